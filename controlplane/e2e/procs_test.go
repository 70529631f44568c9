package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellbench/controlplane/protocol"
	"cellbench/internal/proc"
	"cellbench/internal/testkit"
)

// binDir holds the binaries TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cellbench-cp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if err := testkit.GoBuild(dir, false, "controlplane", "go-router", "mockbackends"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// child is a process the test owns, with its stderr; it is stopped when
// the test ends, whatever happens.
type child struct {
	*proc.Process
	stderr *testkit.Buffer
}

// startProc starts binary (a name in binDir, or an absolute path) with env
// added to the test's environment.
func startProc(t *testing.T, binary string, env []string, args ...string) *child {
	t.Helper()
	if !filepath.IsAbs(binary) {
		binary = filepath.Join(binDir, binary)
	}
	c := &child{stderr: &testkit.Buffer{}}
	// Registered first, so that it runs after the stop: the log is whole.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %v stderr:\n%s", filepath.Base(binary), args, c.stderr.String())
		}
	})
	c.Process = testkit.Start(t, proc.Spec{Path: binary, Args: args, Env: env, Stderr: c.stderr})
	return c
}

// stop sends sig and returns the exit status.
func (c *child) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	c.Signal(sig)
	return c.exitCode(t)
}

func (c *child) exitCode(t *testing.T) int {
	t.Helper()
	code, ok := c.WaitExit(10 * time.Second)
	if !ok {
		t.Fatalf("%s did not exit", c.Name())
	}
	return code
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startCells runs mockbackends with two cells, a and b, on free ports.
func startCells(t *testing.T) (a, b string) {
	t.Helper()
	_, ready := testkit.StartCells(t, filepath.Join(binDir, "mockbackends"), "a", "b")
	return ready.Cells["a"], ready.Cells["b"]
}

// routerConfig is a two-cell document: acme routes to a, the rest to b.
func routerConfig(version, cellA, cellB string) []byte {
	return []byte(fmt.Sprintf(`{
  "version": %q,
  "default_placement": "b",
  "routes": {"acme": "a"},
  "placements": {
    "a": {"kind": "dedicated", "endpoint": "http://%s", "fallback": "b"},
    "b": {"kind": "shared", "endpoint": "http://%s"}
  }
}`, version, cellA, cellB))
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// controlPlane is a running controlplane process.
type controlPlane struct {
	*child
	addr, path, token string
}

func startControlPlane(t *testing.T, addr, path, token string) *controlPlane {
	t.Helper()
	// The token goes the preferred way, out of ps: the environment here,
	// a file for the routers.
	env := []string{protocol.TokenEnv + "=" + token}
	args := []string{"--config", path, "--listen", addr}
	cp := &controlPlane{child: startProc(t, "controlplane", env, args...), path: path, token: token}
	// The bound address comes from the "listening" event, so that a
	// first start can use port 0 and never race other tests for a port.
	testkit.WaitFor(t, 10*time.Second, "control plane listening event", func() bool {
		cp.addr = listeningAddr(cp.stderr.String())
		return cp.addr != ""
	})
	testkit.WaitFor(t, 10*time.Second, "control plane /healthz", func() bool { return httpOK("http://" + cp.addr + "/healthz") })
	return cp
}

// listeningAddr finds the addr of the "listening" event in a JSON log.
func listeningAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var ev struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "listening" {
			return ev.Addr
		}
	}
	return ""
}

func (cp *controlPlane) wsURL() string { return "ws://" + cp.addr + "/connect" }

func (cp *controlPlane) node(t *testing.T, id string) (protocol.NodeStatus, bool) {
	t.Helper()
	resp, err := http.Get("http://" + cp.addr + "/status")
	if err != nil {
		return protocol.NodeStatus{}, false
	}
	defer resp.Body.Close()
	var st protocol.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	for _, n := range st.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return protocol.NodeStatus{}, false
}

func (cp *controlPlane) acked(t *testing.T, id, version string) bool {
	n, ok := cp.node(t, id)
	return ok && n.Connected && n.AckedVersion != nil && *n.AckedVersion == version
}

func (cp *controlPlane) put(t *testing.T, doc []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+cp.addr+"/config", bytes.NewReader(doc))
	if cp.token != "" {
		req.Header.Set("Authorization", "Bearer "+cp.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// routerBinary is where a router kind's binary is: the Go router is built
// by TestMain; the Pingora router is the workspace's debug build, which this
// package does not build (cargo is slow and owned elsewhere) but uses when present.
func routerBinary(t *testing.T, kind string) string {
	t.Helper()
	switch kind {
	case "go":
		return filepath.Join(binDir, "go-router")
	case "pingora":
		path, err := filepath.Abs("../../target/debug/pingora-router")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Skipf("pingora-router is not built (cargo build -p pingora-router): %v", err)
		}
		return path
	}
	t.Fatalf("unknown router kind %q", kind)
	return ""
}

// routerKinds are the routers every protocol test runs against.
var routerKinds = []string{"go", "pingora"}

// router is a running router process.
type router struct {
	*child
	kind, listen, admin string
}

func startRouter(t *testing.T, kind, bootstrap, controlPlaneURL, token, nodeID string) *router {
	t.Helper()
	r := &router{kind: kind, listen: testkit.FreeAddr(t), admin: testkit.FreeAddr(t)}
	args := []string{"--config", bootstrap, "--listen", r.listen, "--admin", r.admin,
		"--control-plane", controlPlaneURL, "--node-id", nodeID, "--access-log", "off"}
	if token != "" {
		args = append(args, "--control-plane-token-file", writeFile(t, t.TempDir(), "token", []byte(token+"\n")))
	}
	// An empty CELLBENCH_CP_TOKEN: the router must not pick up one of the
	// environment the tests run in.
	r.child = startProc(t, routerBinary(t, kind), []string{protocol.TokenEnv + "="}, args...)
	testkit.WaitFor(t, 20*time.Second, kind+" router admin /healthz", func() bool { return httpOK("http://" + r.admin + "/healthz") })
	return r
}

// configVersion sends one request through the router and returns the
// X-Config-Version it was served with.
func (r *router) configVersion(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.listen+"/e2e", nil)
	req.Header.Set("X-Routing-Key", "acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request through the router: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Router") != r.kind {
		t.Fatalf("request through the %s router: %s, X-Router %q", r.kind, resp.Status, resp.Header.Get("X-Router"))
	}
	return resp.Header.Get("X-Config-Version")
}

// metric returns the text of one metric line from the router's /metrics.
func (r *router) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			return line
		}
	}
	return ""
}
