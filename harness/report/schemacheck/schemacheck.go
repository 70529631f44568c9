// Package schemacheck validates a results.json document against
// docs/results.schema.json, for the tests that hold the two together
// (a real JSON Schema validator, not the harness's own reading of it).
package schemacheck

import (
	"bytes"
	"fmt"
	"os"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validate checks doc against the JSON Schema in schemaFile.
func Validate(schemaFile string, doc []byte) error {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		return err
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("results.schema.json", schemaDoc); err != nil {
		return err
	}
	sch, err := c.Compile("results.schema.json")
	if err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}
