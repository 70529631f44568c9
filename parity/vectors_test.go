package parity

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cellbench/internal/testkit"
)

// vector is one shared config test vector (config/testdata/manifest.json).
type vector struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Generate *struct {
		Base       string `json:"base"`
		PadToBytes int    `json:"pad_to_bytes"`
	} `json:"generate"`
	Expect string `json:"expect"` // "ok" or the one error code
}

// Contract §1 and §5 through the router binary: every shared vector at
// startup. A valid one serves; an invalid one exits 2 with its code on
// stderr (the first line of the message starts with the code), and the
// config_rejected event, if logged, names the same code.
func TestConfigVectorsAtStartup(t *testing.T) {
	t.Parallel()
	root, err := testkit.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", "testdata")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(manifest.Vectors) < 50 {
		t.Fatalf("manifest has only %d vectors", len(manifest.Vectors))
	}
	for _, v := range manifest.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			docBytes := v.document(t, dir)
			if v.Expect == "ok" {
				startRouter(t, docBytes) // fails the test unless /healthz answers
				return
			}
			path := filepath.Join(t.TempDir(), "router.json")
			writeConfig(t, path, docBytes)
			p := startProc(t, "router", routerBin, []string{"--config", path, "--listen", testkit.FreeAddr(t), "--admin", testkit.FreeAddr(t), "--access-log", "off"})
			code, ok := p.WaitExit(startTimeout)
			if !ok {
				t.Fatalf("router still running with a %s document", v.Expect)
			}
			stderr := p.stderr.String()
			if code != 2 {
				t.Errorf("exit %d, want 2\nstderr:\n%s", code, stderr)
			}
			var coded bool
			for _, line := range strings.Split(stderr, "\n") {
				coded = coded || strings.HasPrefix(line, v.Expect+":")
				var ev struct{ Msg, Code string }
				if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "config_rejected" && ev.Code != v.Expect {
					t.Errorf("config_rejected event names code %q, want %q", ev.Code, v.Expect)
				}
			}
			if !coded {
				t.Errorf("no stderr line starts with %q:\n%s", v.Expect+":", stderr)
			}
		})
	}
}

// document returns the vector's bytes: its file, or its base file padded
// with spaces.
func (v vector) document(t *testing.T, dir string) []byte {
	t.Helper()
	if v.Generate == nil {
		b, err := os.ReadFile(filepath.Join(dir, v.File))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base, err := os.ReadFile(filepath.Join(dir, v.Generate.Base))
	if err != nil {
		t.Fatal(err)
	}
	return append(base, bytes.Repeat([]byte(" "), v.Generate.PadToBytes-len(base))...)
}
