package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/proc"
	"cellbench/internal/testkit"
	"cellbench/mockbackends/ready"
)

// binary is the real mockbackends, built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mockbackends-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mockbackends")
	if err := testkit.GoBuild(dir, false, "mockbackends"); err != nil {
		fmt.Fprintln(os.Stderr, "building mockbackends:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type process struct {
	*proc.Process
	stderr *testkit.Buffer
}

// start runs the binary and waits for its ready line, which must be the
// first line on stdout; the process is stopped when the test ends.
func start(t *testing.T, args ...string) (*process, ready.Line) {
	t.Helper()
	p := &process{stderr: &testkit.Buffer{}}
	p.Process = testkit.Start(t, proc.Spec{Path: binary, Args: args, Stderr: p.stderr,
		Ready: func(string) bool { return true }})
	line, err := p.WaitReady(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ready.Parse(line)
	if err != nil {
		t.Fatalf("first stdout line: %v; stderr: %s", err, p.stderr)
	}
	return p, l
}

// stop sends SIGTERM and expects a clean exit 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	code, ok := p.WaitExit(10 * time.Second)
	if !ok {
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if code != 0 {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", p.Err(), p.stderr)
	}
}

func getStatus(t *testing.T, url string) (int, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestBinaryCellsAndChaos(t *testing.T) {
	p, ready := start(t, "--cell", "a=127.0.0.1:0", "--cell", "b=127.0.0.1:0", "--admin", "127.0.0.1:0")
	if len(ready.Cells) != 2 || ready.Cells["a"] == "" || ready.Cells["b"] == "" || strings.HasSuffix(ready.Cells["a"], ":0") {
		t.Fatalf("ready line cells = %v, want a and b with bound ports", ready.Cells)
	}
	for name, addr := range ready.Cells {
		if code, h := getStatus(t, "http://"+addr+"/x"); code != 200 || h.Get("X-Cell") != name {
			t.Fatalf("cell %s: %d X-Cell %q", name, code, h.Get("X-Cell"))
		}
	}
	if code, _ := getStatus(t, "http://"+ready.Admin+"/healthz"); code != 200 {
		t.Fatalf("admin healthz: %d", code)
	}
	resp, err := http.Post("http://"+ready.Admin+"/cells/b/chaos", "application/json", strings.NewReader(`{"status":504}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := getStatus(t, "http://"+ready.Cells["b"]+"/"); resp.StatusCode != 200 || code != 504 {
		t.Fatalf("chaos through the binary: POST %d, then cell answered %d", resp.StatusCode, code)
	}
	p.stop(t)
	if !strings.Contains(p.stderr.String(), `"msg":"shutdown"`) {
		t.Fatalf("no shutdown event on stderr: %s", p.stderr)
	}
}

func TestBinaryDemoConfig(t *testing.T) {
	want := map[string]string{"tier1": "127.0.0.1:9001", "tier2": "127.0.0.1:9002", "tier3": "127.0.0.1:9003", "visa": "127.0.0.1:9004"}
	// The demo config names fixed ports; another process on the machine
	// may hold them, which says nothing about this code.
	for _, addr := range want {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("demo port %s is in use: %v", addr, err)
		}
		ln.Close()
	}
	p, ready := start(t, "--config", "../config/examples/demo.json", "--admin", "127.0.0.1:0")
	if len(ready.Cells) != len(want) {
		t.Fatalf("cells = %v, want %v", ready.Cells, want)
	}
	for name, addr := range want {
		if ready.Cells[name] != addr {
			t.Fatalf("cell %s on %q, want %s", name, ready.Cells[name], addr)
		}
		if code, h := getStatus(t, "http://"+addr+"/health"); code != 200 || h.Get("X-Cell") != name {
			t.Fatalf("%s /health: %d X-Cell %q", name, code, h.Get("X-Cell"))
		}
	}
	p.stop(t)
}

func TestBinaryRejects(t *testing.T) {
	dir := t.TempDir()
	sameAddr := filepath.Join(dir, "same.json")
	os.WriteFile(sameAddr, []byte(`{"version":"v","default_placement":"a","placements":{
		"a":{"kind":"shared","endpoint":"http://127.0.0.1:19555"},
		"b":{"kind":"shared","endpoint":"http://127.0.0.1:19555/"}}}`), 0o644)
	invalid := filepath.Join(dir, "invalid.json")
	os.WriteFile(invalid, []byte(`{"version":"v","default_placement":"zz","placements":{"a":{"kind":"shared","endpoint":"http://127.0.0.1:19556"}}}`), 0o644)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined"},
		{"no cells", []string{"--admin", "127.0.0.1:0"}, "no cells"},
		{"bad cell flag", []string{"--cell", "noequals"}, "NAME=HOST:PORT"},
		{"bad cell name", []string{"--cell", "a b=127.0.0.1:0"}, "cell name"},
		{"duplicate name", []string{"--cell", "a=127.0.0.1:0", "--cell", "a=127.0.0.1:0"}, "given twice"},
		{"same address", []string{"--config", sameAddr}, "both listen on 127.0.0.1:19555"},
		{"invalid config", []string{"--config", invalid}, "default_placement_unknown"},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.json")}, "no such file"},
		{"cell bind failure", []string{"--cell", "a=" + taken.Addr().String(), "--admin", "127.0.0.1:0"}, "address already in use"},
		{"admin bind failure", []string{"--cell", "a=127.0.0.1:0", "--admin", taken.Addr().String()}, "--admin"},
		{"extra argument", []string{"--cell", "a=127.0.0.1:0", "stray"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			exitErr, ok := err.(*exec.ExitError)
			if !ok || exitErr.ExitCode() != 2 {
				t.Fatalf("exit = %v, want status 2; stderr: %s", err, stderr.String())
			}
			if len(out) != 0 {
				t.Fatalf("printed %q on stdout before failing", out)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tc.stderr)
			}
		})
	}
}
