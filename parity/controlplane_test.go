package parity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// controlPlane is one controlplane process (contract §7) the router follows.
type controlPlane struct {
	proc *child
	addr string
	http *http.Client
}

func startControlPlane(t testing.TB, cfg any) *controlPlane {
	t.Helper()
	path := filepath.Join(t.TempDir(), "controlplane.json")
	writeConfig(t, path, cfg)
	cp := &controlPlane{addr: testkit.FreeAddr(t), http: &http.Client{Timeout: clientTimeout}}
	cp.proc = startProc(t, "controlplane", cpBin, []string{"--config", path, "--listen", cp.addr})
	eventually(t, startTimeout, 20*time.Millisecond, "control plane /healthz", func() (bool, string) {
		if cp.proc.Exited() {
			t.Fatalf("control plane exited: %v\n%s", cp.proc.State(), cp.proc.stderr.String())
		}
		resp, err := cp.http.Get("http://" + cp.addr + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return cp
}

func (cp *controlPlane) put(t testing.TB, cfg any) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	req, _ := http.NewRequest(http.MethodPut, "http://"+cp.addr+"/config", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := cp.http.Do(req)
	if err != nil {
		t.Fatalf("PUT /config: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PUT /config: %s %s", resp.Status, body)
	}
}

// Contract §4-6 with a control plane as the source: the file is only the
// bootstrap, the admin views and metrics say control_plane, the cp_* events
// are logged, and the router keeps serving when the control plane goes away.
func TestControlPlaneSource(t *testing.T) {
	t.Parallel()
	c := startCells(t, "p")
	build := func(version string) doc {
		return configDoc(version, "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)})
	}
	cp := startControlPlane(t, build("cp-1"))
	r := startRouter(t, build("boot-1"), "--control-plane", "ws://"+cp.addr+"/connect", "--node-id", "parity-node")
	version := func() string { return r.get(t, "/", "k").header.Get("X-Config-Version") }

	t.Run("the control plane's snapshot replaces the bootstrap", func(t *testing.T) {
		eventually(t, 5*time.Second, 20*time.Millisecond, "X-Config-Version cp-1", func() (bool, string) {
			v := version()
			return v == "cp-1", v
		})
		var dc debugConfig
		r.getJSON(t, "/debug/config", &dc)
		if dc.Version != "cp-1" || dc.Source != "control_plane" {
			t.Errorf("/debug/config version %q source %q, want cp-1 control_plane", dc.Version, dc.Source)
		}
		m := r.metrics(t)
		if v := m.value(t, "cellbench_config_info", labels{"version": "cp-1", "source": "control_plane"}); v != 1 {
			t.Errorf("cellbench_config_info{cp-1,control_plane} = %v, want 1", v)
		}
		if v := m.value(t, "cellbench_control_plane_connected", nil); v != 1 {
			t.Errorf("cellbench_control_plane_connected = %v while connected, want 1", v)
		}
		if len(r.events("cp_connected")) == 0 {
			t.Errorf("no cp_connected event on stderr")
		}
		if !hasEvent(r.events("config_applied"), doc{"version": "cp-1", "source": "control_plane"}) {
			t.Errorf("no config_applied event {version cp-1, source control_plane}")
		}
	})

	t.Run("the file is only the bootstrap", func(t *testing.T) {
		writeConfig(t, r.configPath, build("file-2"))
		r.proc.Signal(syscall.SIGHUP) // nor does SIGHUP make it the source, or stop the router
		time.Sleep(reloadBound)
		if r.proc.Exited() {
			t.Fatalf("SIGHUP stopped the router: %v", r.proc.State())
		}
		if v := version(); v != "cp-1" {
			t.Errorf("X-Config-Version %q after the bootstrap file changed and SIGHUP, want cp-1 (the control plane's)", v)
		}
	})

	t.Run("a pushed change is served", func(t *testing.T) {
		at := time.Now()
		cp.put(t, build("cp-2"))
		eventually(t, 2*time.Second, 10*time.Millisecond, "X-Config-Version cp-2", func() (bool, string) {
			v := version()
			return v == "cp-2", v
		})
		t.Logf("cp-2 served %v after the PUT", time.Since(at).Round(time.Millisecond))
	})

	t.Run("without the control plane the last snapshot keeps serving", func(t *testing.T) {
		cp.proc.Signal(syscall.SIGTERM)
		if _, ok := cp.proc.WaitExit(stopTimeout); !ok {
			t.Fatalf("control plane did not stop")
		}
		eventually(t, 3*time.Second, 20*time.Millisecond, "control_plane_connected 0", func() (bool, string) {
			return seriesValue(t, r.metrics(t), "cellbench_control_plane_connected", nil) == 0, ""
		})
		if len(r.events("cp_disconnected")) == 0 {
			t.Errorf("no cp_disconnected event on stderr")
		}
		rp := r.get(t, "/", "k")
		wantServed(t, rp, "p", "default", "")
		wantHeaders(t, rp, map[string]string{"X-Config-Version": "cp-2"})
	})
}
