package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedScenariosLoad(t *testing.T) {
	scs, err := LoadDir(filepath.Join(root, "scenarios"), root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"routing": true, "reload": true, "control_plane_push": true, "failure_injection": true, "capacity": true}
	for _, s := range scs {
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Fatalf("scenarios missing: %v", want)
	}
}

func TestParseGood(t *testing.T) {
	s, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Rate != 10 || len(s.Timeline) != 1 || s.Timeline[0].Cell != "tier1" {
		t.Fatalf("decoded %+v", s)
	}
	if got := s.Duration(0.5); got.Milliseconds() != 500 {
		t.Fatalf("scaled duration %v", got)
	}
	s.FixedTiming = true
	if got := s.Duration(0.5); got.Milliseconds() != 1000 {
		t.Fatalf("fixed-timing duration %v", got)
	}
}

func TestParseBad(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", `"rate": 10`, `"rate": 10, "rtae": 1`, "unknown field"},
		{"wrong type", `"rate": 10`, `"rate": "10"`, "cannot unmarshal"},
		{"bad name", `"name": "x"`, `"name": "X Y"`, "name"},
		{"no question", `"question": "q?"`, `"question": " "`, "question"},
		{"config and inline", `"config": "config/examples/demo.json"`, `"config": "config/examples/demo.json", "config_inline": {}`, "exactly one"},
		{"config outside examples", `"config/examples/demo.json"`, `"/etc/passwd"`, "config/examples"},
		{"invalid inline config", `"config": "config/examples/demo.json"`, `"config_inline": {"version": "v"}`, "no_placements"},
		{"access log", `"access_log": "off"`, `"access_log": "stdout"`, "access_log"},
		{"no targets", `[{"routing_key": "acme", "method": "GET", "path": "/", "weight": 1}]`, `[]`, "targets"},
		{"bad method", `"GET"`, `"CONNECT"`, "method"},
		{"bad path", `"path": "/"`, `"path": "x"`, "path"},
		{"zero weight", `"weight": 1`, `"weight": 0`, "weight"},
		{"zero rate", `"rate": 10`, `"rate": 0`, "rate"},
		{"rate and steps", `"rate": 10`, `"rate": 10, "steps": {"rates": [1], "step_ms": 100, "pause_ms": 0}`, "exclusive"},
		{"action after end", `"at_ms": 100`, `"at_ms": 1000`, "at_ms"},
		{"unknown action", `"action": "chaos"`, `"action": "explode"`, "timeline[0]"},
		{"chaos without cell", `"cell": "tier1", `, ``, "cell"},
		{"cp action without control plane", `"action": "chaos", "cell": "tier1", "chaos": {"down": true}`, `"action": "cp_kill"`, "control_plane"},
		{"slo", `"min_success": 0.99`, `"min_success": 1.5`, "min_success"},
		{"trailing data", `"max_p99_ms": 10}
}`, `"max_p99_ms": 10}
} {}`, "trailing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(good, c.from, c.to, 1)
			if doc == good {
				t.Fatalf("replacement %q did not apply", c.from)
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestLoadChecksFileNameAndConfig(t *testing.T) {
	dir := t.TempDir()
	wrong := filepath.Join(dir, "other.json")
	if err := os.WriteFile(wrong, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(wrong, root); err == nil || !strings.Contains(err.Error(), "file name") {
		t.Fatalf("got %v, want a file-name mismatch", err)
	}
	missing := filepath.Join(dir, "x.json")
	doc := strings.Replace(good, "demo.json", "nope.json", 1)
	if err := os.WriteFile(missing, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(missing, root); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("got %v, want the missing config named", err)
	}
}
