package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const healthCheck = `"health_check": {"path": "/health", "interval_ms": 1000, "timeout_ms": 500, "unhealthy_threshold": 1, "healthy_threshold": 1}`
const breakerCfg = `"circuit_breaker": {"failure_threshold": 1, "open_ms": 60000}`

func twoPlacementDoc(version, endpointA, endpointB, extraA string) string {
	return fmt.Sprintf(`{"version": %q, "default_placement": "a",
	  "placements": {
	    "a": {"kind": "shared", "endpoint": %q, %s, %s %s},
	    "b": {"kind": "shared", "endpoint": %q, %s}}}`,
		version, endpointA, healthCheck, breakerCfg, extraA, endpointB, healthCheck)
}

func TestApplyKeepsStateOfUnchangedEndpoints(t *testing.T) {
	failing := upstreamFunc(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	other := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	rt, _ := newTestRouter(t, twoPlacementDoc("v1", failing, ok, ""))
	first := rt.current.Load()
	a, b := first.placements[0], first.placements[1]
	waitFor(t, func() bool { return a.health.unhealthy.Load() })

	// Same endpoint for a with a changed timeout, a new one for b.
	if err := rt.Apply([]byte(twoPlacementDoc("v2", failing, other, `, "timeouts": {"connect_ms": 50}`)), SourceFile); err != nil {
		t.Fatal(err)
	}
	second := rt.current.Load()
	a2, b2 := second.placements[0], second.placements[1]
	if a2.health != a.health || !a2.health.unhealthy.Load() || a2.breaker != a.breaker || a2.inflight != a.inflight {
		t.Error("placement a lost its health or breaker state although its endpoint did not change")
	}
	if a2.upstream == a.upstream {
		t.Error("placement a kept a pool whose connect timeout changed")
	}
	if b2.health == b.health || b2.inflight == b.inflight {
		t.Error("placement b kept state although its endpoint changed")
	}
	if first.cfg.Version != "v1" || second.cfg.Version != "v2" {
		t.Error("old snapshot was modified")
	}
}

// New breaker settings are a new, closed breaker (contract §5); the rest
// of the placement's state is kept.
func TestApplyNewBreakerSettingsStartAClosedBreaker(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	rt, _ := newTestRouter(t, twoPlacementDoc("v1", ok, ok, ""))
	a := rt.current.Load().placements[0]
	done, allowed := a.breaker.allow()
	if !allowed {
		t.Fatal("a closed breaker refused a permit")
	}
	done(errAttemptFailed) // threshold 1: open
	if st := a.breaker.state(); st != circuitOpen {
		t.Fatalf("breaker %s after a failure at threshold 1, want open", st)
	}
	retuned := strings.Replace(twoPlacementDoc("v2", ok, ok, ""), `"open_ms": 60000`, `"open_ms": 30000`, 1)
	if err := rt.Apply([]byte(retuned), SourceFile); err != nil {
		t.Fatal(err)
	}
	a2 := rt.current.Load().placements[0]
	if a2.breaker == a.breaker || a2.breaker.state() != circuitClosed {
		t.Errorf("breaker after new settings: same %v, state %s; want a new, closed one", a2.breaker == a.breaker, a2.breaker.state())
	}
	if a2.health != a.health || a2.inflight != a.inflight {
		t.Error("new breaker settings dropped the placement's health or in-flight state")
	}
}

func TestApplyStopsRemovedCheckers(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	rt, _ := newTestRouter(t, twoPlacementDoc("v1", ok, ok, ""))
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := range 20 {
		doc := twoPlacementDoc(fmt.Sprint("v", i), ok, fmt.Sprintf("http://127.0.0.1:%d", 1+i), "")
		if err := rt.Apply([]byte(doc), SourceFile); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+3 {
		t.Fatalf("%d goroutines after 20 reloads that each replaced a checker, %d before", n, base)
	}
	one := fmt.Sprintf(`{"version": "only-a", "default_placement": "a", "placements": {"a": {"kind": "shared", "endpoint": %q}}}`, ok)
	if err := rt.Apply([]byte(one), SourceFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine(); n >= base {
		t.Fatalf("%d goroutines after removing both health checks, %d with them", n, base)
	}
}

func TestApplyRejectedChangesNothing(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	rt, events := newTestRouter(t, twoPlacementDoc("v1", ok, ok, ""))
	before := rt.current.Load()
	err := rt.Apply([]byte(`{"version": "bad-1", "default_placement": "nope", "placements": {"a": {"kind": "shared", "endpoint": "http://127.0.0.1:1"}}}`), SourceFile)
	if err == nil || rt.current.Load() != before {
		t.Fatalf("invalid document applied (err %v)", err)
	}
	if !events.has("config_rejected", map[string]string{"code": "default_placement_unknown", "version": "bad-1"}) {
		t.Error("no config_rejected event with code and version")
	}
	rec := httptest.NewRecorder()
	rt.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/config", nil))
	var dc struct {
		Version      string
		Source       string
		LastRejected *struct{ Version, Error string } `json:"last_rejected"`
		Config       map[string]any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &dc); err != nil {
		t.Fatal(err)
	}
	if dc.Version != "v1" || dc.Source != "file" || dc.LastRejected == nil || dc.LastRejected.Version != "bad-1" || dc.Config["version"] != "v1" {
		t.Fatalf("/debug/config after rejection: %s", rec.Body)
	}
}

func TestFileSourceAppliesRenameAndRewrite(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	dir := t.TempDir()
	path := filepath.Join(dir, "router.json")
	doc := func(v string) []byte {
		return []byte(fmt.Sprintf(`{"version": %q, "default_placement": "a", "placements": {"a": {"kind": "shared", "endpoint": %q}}}`, v, ok))
	}
	if err := os.WriteFile(path, doc("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newTestRouter(t, string(doc("v1")))
	src := NewFileSource(path, rt, rt.events, doc("v1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	time.Sleep(20 * time.Millisecond)

	within := func(version string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for rt.Version() != version {
			if time.Now().After(deadline) {
				t.Fatalf("version %q not applied within 1 s (serving %q)", version, rt.Version())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Atomic rename over the file.
	tmp := filepath.Join(dir, ".router.json.tmp")
	os.WriteFile(tmp, doc("v2"), 0o644)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	within("v2")
	// In-place rewrite.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	f.Write(doc("v3"))
	f.Close()
	within("v3")
	// An invalid rewrite keeps v3; SIGHUP-style reload of a fixed file applies.
	os.WriteFile(path, []byte(`{"version": "v4"`), 0o644)
	time.Sleep(300 * time.Millisecond)
	if rt.Version() != "v3" || rt.lastRejected.Load() == nil {
		t.Fatalf("invalid file: serving %q, last_rejected %v", rt.Version(), rt.lastRejected.Load())
	}
	os.WriteFile(path, doc("v5"), 0o644)
	src.Reload()
	within("v5")
}
