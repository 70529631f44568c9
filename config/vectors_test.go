package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// manifest mirrors testdata/manifest.json, which the Rust router reads too.
type manifest struct {
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Generate *struct {
		Base       string `json:"base"`
		PadToBytes int    `json:"pad_to_bytes"`
	} `json:"generate"`
	Expect string `json:"expect"`
	Why    string `json:"why"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m.Vectors
}

func (v vector) document(t *testing.T) []byte {
	t.Helper()
	if v.Generate == nil {
		doc, err := os.ReadFile(filepath.Join("testdata", v.File))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	base, err := os.ReadFile(filepath.Join("testdata", v.Generate.Base))
	if err != nil {
		t.Fatal(err)
	}
	if len(base) > v.Generate.PadToBytes {
		t.Fatalf("base %s is already %d bytes", v.Generate.Base, len(base))
	}
	return append(base, bytes.Repeat([]byte{' '}, v.Generate.PadToBytes-len(base))...)
}

func TestSharedVectors(t *testing.T) {
	vectors := loadVectors(t)
	known := map[string]bool{"ok": true}
	for _, code := range Codes {
		known[code] = true
	}
	covered := map[string]bool{}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			if !known[v.Expect] {
				t.Fatalf("manifest expects %q, which is not an error code", v.Expect)
			}
			covered[v.Expect] = true
			cfg, err := Parse(v.document(t))
			got := "ok"
			if err != nil {
				got = CodeOf(err)
				if got == "" {
					t.Fatalf("rejection without a code: %v", err)
				}
				if cfg != nil {
					t.Errorf("a rejected document also returned a config")
				}
			}
			if got != v.Expect {
				t.Errorf("%s (%s): got %s (%v), want %s", v.Name, v.Why, got, err, v.Expect)
			}
		})
	}
	for code := range known {
		if !covered[code] {
			t.Errorf("no vector expects %s", code)
		}
	}
}
