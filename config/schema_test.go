package config

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestSchemaMatchesTypes keeps schema.json and the Go types in step: every
// object in the schema lists exactly the JSON fields of its Go struct.
func TestSchemaMatchesTypes(t *testing.T) {
	raw, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       struct {
			Placement struct {
				Properties map[string]struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"properties"`
			} `json:"placement"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got map[string]json.RawMessage, typ reflect.Type) {
		t.Helper()
		if want, have := jsonFields(typ), keys(got); !reflect.DeepEqual(want, have) {
			t.Errorf("%s: schema has %v, Go type %s has %v", what, have, typ.Name(), want)
		}
	}
	check("document", schema.Properties, reflect.TypeOf(Config{}))
	placementProps := map[string]json.RawMessage{}
	for name := range schema.Defs.Placement.Properties {
		placementProps[name] = nil
	}
	check("placement", placementProps, reflect.TypeOf(Placement{}))
	for field, typ := range map[string]reflect.Type{
		"timeouts": reflect.TypeOf(Timeouts{}), "health_check": reflect.TypeOf(HealthCheck{}),
		"circuit_breaker": reflect.TypeOf(CircuitBreaker{}), "rate_limit": reflect.TypeOf(RateLimit{}),
		"retry": reflect.TypeOf(Retry{}),
	} {
		check(field, schema.Defs.Placement.Properties[field].Properties, typ)
	}
}

func jsonFields(typ reflect.Type) []string {
	var names []string
	for i := 0; i < typ.NumField(); i++ {
		names = append(names, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(names)
	return names
}

func keys(m map[string]json.RawMessage) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
