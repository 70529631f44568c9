package parity

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reloadBound is the contract's "applied within 1 s", plus the time one
// polling request takes on a loaded box.
const reloadBound = 1100 * time.Millisecond

// Contract §5: the file source, SIGHUP, rejection of invalid documents,
// atomic swaps, and state that survives a swap.
func TestReload(t *testing.T) {
	t.Parallel()
	c := startCells(t, "p", "q", "b", "s")
	build := func(version string, extraRoutes map[string]string) doc {
		routes := map[string]string{"k": "p", "kb": "b"}
		for k, v := range extraRoutes {
			routes[k] = v
		}
		return configDoc(version, "q", routes, doc{
			// healthy_threshold 50 × 100 ms: once unhealthy, p stays so for
			// 5 s, longer than any reload below takes.
			"p": placement("shared", c.endpoint("p"), doc{"fallback": "q", "health_check": healthCheck(100, 80, 2, 50)}),
			"q": placement("shared", c.endpoint("q"), nil),
			"b": placement("shared", c.endpoint("b"), doc{"fallback": "q", "circuit_breaker": breaker(2, 60000)}),
			"s": placement("shared", c.endpoint("s"), nil),
		})
	}
	r := startRouter(t, build("reload-1", nil))
	dir := filepath.Dir(r.configPath)
	marshal := func(d doc) []byte { b, _ := json.Marshal(d); return b }

	// waitVersion waits until requests carry the version and returns how
	// long that took from the change.
	waitVersion := func(t *testing.T, version string, since time.Time) {
		t.Helper()
		eventually(t, reloadBound, 10*time.Millisecond, "X-Config-Version "+version, func() (bool, string) {
			rp := r.get(t, "/", "probe")
			return rp.header.Get("X-Config-Version") == version, rp.header.Get("X-Config-Version")
		})
		t.Logf("%s visible %v after the change", version, time.Since(since).Round(time.Millisecond))
	}
	inPlace := func(t *testing.T, b []byte) time.Time {
		t.Helper()
		f, err := os.OpenFile(r.configPath, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		at := time.Now()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		return at
	}
	renameOver := func(t *testing.T, b []byte) time.Time {
		t.Helper()
		tmp := filepath.Join(dir, ".router.json.tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		if err := os.Rename(tmp, r.configPath); err != nil {
			t.Fatal(err)
		}
		return at
	}

	t.Run("in-place rewrite", func(t *testing.T) {
		waitVersion(t, "reload-2", inPlace(t, marshal(build("reload-2", nil))))
		m := r.metrics(t)
		if v := m.value(t, "cellbench_config_info", labels{"version": "reload-2", "source": "file"}); v != 1 {
			t.Errorf("cellbench_config_info{version=reload-2} = %v, want 1", v)
		}
		for _, s := range m.series("cellbench_config_info", nil) {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "version" && lp.GetValue() != "reload-2" && sampleValue(s) != 0 {
					t.Errorf("cellbench_config_info still reports version %q after the swap", lp.GetValue())
				}
			}
		}
		if v := m.value(t, "cellbench_config_reloads_total", labels{"result": "applied"}); v < 1 {
			t.Errorf("reloads_total{applied} = %v after a reload, want >= 1", v)
		}
	})

	t.Run("atomic rename over the file", func(t *testing.T) {
		waitVersion(t, "reload-3", renameOver(t, marshal(build("reload-3", nil))))
	})

	t.Run("in-place rewrite after a rename", func(t *testing.T) {
		waitVersion(t, "reload-4", inPlace(t, marshal(build("reload-4", nil))))
	})

	t.Run("SIGHUP reloads and does not stop the router", func(t *testing.T) {
		r.proc.Signal(syscall.SIGHUP)
		time.Sleep(200 * time.Millisecond)
		if r.proc.Exited() {
			t.Fatalf("SIGHUP stopped the router: %v", r.proc.State())
		}
		b := marshal(build("reload-5", nil))
		tmp := filepath.Join(dir, ".router.json.tmp")
		os.WriteFile(tmp, b, 0o644)
		os.Rename(tmp, r.configPath)
		at := time.Now()
		r.proc.Signal(syscall.SIGHUP)
		waitVersion(t, "reload-5", at)
	})

	t.Run("an invalid document is rejected and the last good one serves", func(t *testing.T) {
		applied := r.metrics(t).value(t, "cellbench_config_reloads_total", labels{"result": "applied"})
		rejectedBefore := r.metrics(t).value(t, "cellbench_config_reloads_total", labels{"result": "rejected"})
		bad := build("reload-bad", nil)
		bad["bogus_field"] = true
		renameOver(t, marshal(bad))
		eventually(t, reloadBound, 20*time.Millisecond, "config_rejected event with code unknown_field", func() (bool, string) {
			return hasEvent(r.events("config_rejected"), doc{"code": "unknown_field", "source": "file"}), ""
		})
		var dc debugConfig
		r.getJSON(t, "/debug/config", &dc)
		var raw struct {
			LastRejected map[string]json.RawMessage `json:"last_rejected"`
		}
		r.getJSON(t, "/debug/config", &raw)
		for _, f := range []string{"version", "error", "at"} {
			if _, ok := raw.LastRejected[f]; !ok {
				t.Errorf("/debug/config last_rejected has no %q: %v", f, raw.LastRejected)
			}
		}
		if dc.Version != "reload-5" {
			t.Errorf("/debug/config version %q after a rejected document, want reload-5", dc.Version)
		}
		if dc.LastRejected == nil || !strings.HasPrefix(dc.LastRejected.Error, "unknown_field") {
			t.Errorf("/debug/config last_rejected %+v, want an error starting with unknown_field", dc.LastRejected)
		} else if _, err := time.Parse(time.RFC3339Nano, dc.LastRejected.At); err != nil {
			t.Errorf("last_rejected.at %q is not RFC 3339", dc.LastRejected.At)
		}
		rp := r.get(t, "/", "k")
		wantServed(t, rp, "p", "shared", "")
		wantHeaders(t, rp, map[string]string{"X-Config-Version": "reload-5"})

		renameOver(t, []byte(`{"version": "reload-broken",`))
		eventually(t, reloadBound, 20*time.Millisecond, "config_rejected event with code parse_error", func() (bool, string) {
			return hasEvent(r.events("config_rejected"), doc{"code": "parse_error"}), ""
		})
		m := r.metrics(t)
		if v := m.value(t, "cellbench_config_reloads_total", labels{"result": "rejected"}); v < rejectedBefore+2 {
			t.Errorf("reloads_total{rejected} %v, want >= %v", v, rejectedBefore+2)
		}
		if v := m.value(t, "cellbench_config_reloads_total", labels{"result": "applied"}); v != applied {
			t.Errorf("reloads_total{applied} moved from %v to %v on rejected documents", applied, v)
		}
		waitVersion(t, "reload-6", renameOver(t, marshal(build("reload-6", nil))))
	})

	t.Run("a deleted file keeps the last good config; a new file is applied", func(t *testing.T) {
		if err := os.Remove(r.configPath); err != nil {
			t.Fatal(err)
		}
		time.Sleep(reloadBound)
		if r.proc.Exited() {
			t.Fatalf("the router exited when its config file was deleted: %v", r.proc.State())
		}
		wantHeaders(t, r.get(t, "/", "probe"), map[string]string{"X-Config-Version": "reload-6"})
		at := time.Now()
		if err := os.WriteFile(r.configPath, marshal(build("reload-6b", nil)), 0o644); err != nil {
			t.Fatal(err)
		}
		waitVersion(t, "reload-6b", at)
	})

	t.Run("health state of an unchanged placement survives a swap", func(t *testing.T) {
		c.chaos(t, "p", doc{"health": "fail"})
		eventually(t, 3*time.Second, 10*time.Millisecond, "p unhealthy", func() (bool, string) {
			rp := r.get(t, "/", "k")
			return rp.header.Get("X-Failover-Reason") == "unhealthy", rp.header.Get("X-Routed-To")
		})
		c.resetChaos(t, "p") // p now needs 50 good probes (5 s) to be healthy again
		waitVersion(t, "reload-7", renameOver(t, marshal(build("reload-7", map[string]string{"extra": "q"}))))
		wantServed(t, r.get(t, "/", "k"), "q", "shared", "unhealthy")
		if st := r.upstreams(t)["p"]; st.Health != "unhealthy" {
			t.Errorf("/debug/upstreams p health %q after the swap, want unhealthy", st.Health)
		}
	})

	t.Run("a changed endpoint starts with fresh state", func(t *testing.T) {
		// p is still unhealthy from the subtest above (it needs 5 s of good
		// probes). Pointing it at another cell makes it a new upstream:
		// healthy from the start (§2.9), so it serves at once.
		moved := build("reload-7b", map[string]string{"extra": "q"})
		moved["placements"].(doc)["p"].(doc)["endpoint"] = c.endpoint("s")
		waitVersion(t, "reload-7b", renameOver(t, marshal(moved)))
		rp := r.get(t, "/", "k")
		if rp.status != 200 || rp.header.Get("X-Cell") != "s" {
			t.Fatalf("want 200 from p's new cell s, got:\n%s", rp)
		}
		wantHeaders(t, rp, map[string]string{"X-Routed-To": "p", "X-Failover-Reason": ""})
	})

	t.Run("breaker state of an unchanged placement survives a swap", func(t *testing.T) {
		for range 2 {
			if rp := r.get(t, "/?status=500", "kb"); rp.status != 500 {
				t.Fatalf("want 500 from b, got:\n%s", rp)
			}
		}
		wantServed(t, r.get(t, "/", "kb"), "q", "shared", "circuit_open")
		waitVersion(t, "reload-8", renameOver(t, marshal(build("reload-8", map[string]string{"extra": "p"}))))
		wantServed(t, r.get(t, "/", "kb"), "q", "shared", "circuit_open")
	})

	t.Run("changed breaker settings start a closed breaker", func(t *testing.T) {
		// b is open for 60 s from the subtest above. New settings are a new
		// breaker (contract §5): closed at once, counting from zero against
		// the new threshold.
		if st := r.upstreams(t)["b"]; st.Circuit != "open" {
			t.Fatalf("/debug/upstreams b circuit %q before the swap, want open", st.Circuit)
		}
		retuned := build("reload-8b", map[string]string{"extra": "p"})
		retuned["placements"].(doc)["b"].(doc)["circuit_breaker"] = breaker(3, 30000)
		waitVersion(t, "reload-8b", renameOver(t, marshal(retuned)))
		if st := r.upstreams(t)["b"]; st.Circuit != "closed" {
			t.Errorf("/debug/upstreams b circuit %q after new breaker settings, want closed", st.Circuit)
		}
		for i := range 3 {
			rp := r.get(t, "/?status=500", "kb")
			if rp.status != 500 || rp.header.Get("X-Cell") != "b" {
				t.Fatalf("failure %d: want 500 from b, got:\n%s", i+1, rp)
			}
			if st := rp.header.Get("X-Circuit-State"); i < 2 && st != "closed" {
				t.Errorf("failure %d of threshold 3: X-Circuit-State %q, want closed", i+1, st)
			}
		}
		wantServed(t, r.get(t, "/", "kb"), "q", "shared", "circuit_open")
	})

	t.Run("a request sees one snapshot, never a mix", func(t *testing.T) {
		// Versions alternate the route of key "swap" between s and q; every
		// response must be routed by the version it reports.
		want := map[string]string{}
		var mu sync.Mutex
		var stop atomic.Bool
		var wg sync.WaitGroup
		var checked atomic.Int64
		problems := make(chan string, 100)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					rp, err := r.send(req{path: "/", key: "swap"})
					if err != nil {
						problems <- "request during reloads: " + err.Error()
						return
					}
					v, to := rp.header.Get("X-Config-Version"), rp.header.Get("X-Routed-To")
					mu.Lock()
					exp, known := want[v]
					mu.Unlock()
					if known && to != exp {
						select {
						case problems <- "version " + v + " routed swap to " + to + ", want " + exp:
						default:
						}
					}
					checked.Add(1)
				}
			}()
		}
		// Stop the senders however this subtest ends, before its router does.
		defer func() {
			stop.Store(true)
			wg.Wait()
			close(problems)
			for p := range problems {
				t.Error(p)
			}
		}()
		for i := range 6 {
			v, to := "swap-"+itoa(i), []string{"s", "q"}[i%2]
			mu.Lock()
			want[v] = to
			mu.Unlock()
			waitVersion(t, v, renameOver(t, marshal(build(v, map[string]string{"swap": to}))))
			time.Sleep(100 * time.Millisecond)
		}
		if checked.Load() < 20 {
			t.Errorf("only %d requests checked during the reloads", checked.Load())
		}
	})
}

// debugConfig is the body of /debug/config (contract §6).
type debugConfig struct {
	Version      string          `json:"version"`
	Source       string          `json:"source"`
	AppliedAt    string          `json:"applied_at"`
	LastRejected *lastRejected   `json:"last_rejected"`
	Config       json.RawMessage `json:"config"`
}

type lastRejected struct {
	Version *string `json:"version"`
	Error   string  `json:"error"`
	At      string  `json:"at"`
}
