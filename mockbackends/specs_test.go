package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCollectSpecs(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg.json")
	os.WriteFile(cfg, []byte(`{"version":"v","default_placement":"b","placements":{
		"b":{"kind":"shared","endpoint":"http://[::1]:19601/",
		     "health_check":{"path":"/ready","interval_ms":1000,"timeout_ms":500,"unhealthy_threshold":1,"healthy_threshold":1}},
		"a":{"kind":"dedicated","endpoint":"http://LocalHost:19602"}}}`), 0o644)

	specs, err := collectSpecs(cfg, []cellSpec{{name: "x", addr: "127.0.0.1:0", source: "--cell x=127.0.0.1:0"}, {name: "y", addr: "127.0.0.1:0", source: "--cell y=127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []cellSpec{
		{name: "a", addr: "LocalHost:19602", source: "placement a"},
		{name: "b", addr: "[::1]:19601", healthPath: "/ready", source: "placement b"},
		{name: "x", addr: "127.0.0.1:0", source: "--cell x=127.0.0.1:0"},
		{name: "y", addr: "127.0.0.1:0", source: "--cell y=127.0.0.1:0"},
	}
	if !reflect.DeepEqual(specs, want) {
		t.Fatalf("specs = %+v\nwant %+v", specs, want)
	}

	// Host names compare case-insensitively.
	_, err = collectSpecs(cfg, []cellSpec{{name: "z", addr: "localhost:19602", source: "--cell z=localhost:19602"}})
	if err == nil || !strings.Contains(err.Error(), "placement a and --cell z=localhost:19602 both listen on localhost:19602") {
		t.Fatalf("same address error = %v", err)
	}
	_, err = collectSpecs(cfg, []cellSpec{{name: "a", addr: "127.0.0.1:0", source: "--cell a=127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), `"a" is given twice`) {
		t.Fatalf("duplicate name error = %v", err)
	}
}
