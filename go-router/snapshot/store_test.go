package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"cellbench/go-router/engine"
	"cellbench/go-router/obs"
	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/internal/testkit"
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
	store, _ := newTestStore(t, twoPlacementDoc("v1", failing, ok, ""))
	first := store.Current()
	a, b := first.Placements[0], first.Placements[1]
	testkit.WaitFor(t, 3*time.Second, "placement a unhealthy", func() bool { return a.Health.Unhealthy() })

	// Same endpoint for a with a changed timeout, a new one for b.
	if err := store.Apply([]byte(twoPlacementDoc("v2", failing, other, `, "timeouts": {"connect_ms": 50}`)), SourceFile); err != nil {
		t.Fatal(err)
	}
	second := store.Current()
	a2, b2 := second.Placements[0], second.Placements[1]
	if a2.Health != a.Health || !a2.Health.Unhealthy() || a2.Breaker != a.Breaker || a2.Concurrency != a.Concurrency {
		t.Error("placement a lost its health or breaker state although its endpoint did not change")
	}
	if a2.Upstream == a.Upstream {
		t.Error("placement a kept a pool whose connect timeout changed")
	}
	if b2.Health == b.Health || b2.Concurrency == b.Concurrency {
		t.Error("placement b kept state although its endpoint changed")
	}
	if first.Config.Version != "v1" || second.Config.Version != "v2" {
		t.Error("old snapshot was modified")
	}
}

// New breaker settings are a new, closed breaker (contract §5); the rest
// of the placement's state is kept.
func TestApplyNewBreakerSettingsStartAClosedBreaker(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	store, _ := newTestStore(t, twoPlacementDoc("v1", ok, ok, ""))
	a := store.Current().Placements[0]
	permit, allowed := a.Breaker.Admit()
	if !allowed {
		t.Fatal("a closed breaker refused a permit")
	}
	permit.Record(routing.OutcomeConnectFailure, 0) // threshold 1: open
	if st := a.Breaker.State(); st != resilience.Open {
		t.Fatalf("breaker %s after a failure at threshold 1, want open", st)
	}
	retuned := strings.Replace(twoPlacementDoc("v2", ok, ok, ""), `"open_ms": 60000`, `"open_ms": 30000`, 1)
	if err := store.Apply([]byte(retuned), SourceFile); err != nil {
		t.Fatal(err)
	}
	a2 := store.Current().Placements[0]
	if a2.Breaker == a.Breaker || a2.Breaker.State() != resilience.Closed {
		t.Errorf("breaker after new settings: same %v, state %s; want a new, closed one", a2.Breaker == a.Breaker, a2.Breaker.State())
	}
	if a2.Health != a.Health || a2.Concurrency != a.Concurrency {
		t.Error("new breaker settings dropped the placement's health or in-flight state")
	}
}

func TestApplyStopsRemovedCheckers(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	store, _ := newTestStore(t, twoPlacementDoc("v1", ok, ok, ""))
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := range 20 {
		doc := twoPlacementDoc(fmt.Sprint("v", i), ok, fmt.Sprintf("http://127.0.0.1:%d", 1+i), "")
		if err := store.Apply([]byte(doc), SourceFile); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+3 {
		t.Fatalf("%d goroutines after 20 reloads that each replaced a checker, %d before", n, base)
	}
	one := fmt.Sprintf(`{"version": "only-a", "default_placement": "a", "placements": {"a": {"kind": "shared", "endpoint": %q}}}`, ok)
	if err := store.Apply([]byte(one), SourceFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine(); n >= base {
		t.Fatalf("%d goroutines after removing both health checks, %d with them", n, base)
	}
}

func TestApplyRejectedChangesNothing(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	store, events := newTestStore(t, twoPlacementDoc("v1", ok, ok, ""))
	before := store.Current()
	err := store.Apply([]byte(`{"version": "bad-1", "default_placement": "nope", "placements": {"a": {"kind": "shared", "endpoint": "http://127.0.0.1:1"}}}`), SourceFile)
	if err == nil || store.Current() != before {
		t.Fatalf("invalid document applied (err %v)", err)
	}
	if !events.has("config_rejected", map[string]string{"code": "default_placement_unknown", "version": "bad-1"}) {
		t.Error("no config_rejected event with code and version")
	}
	if r := store.LastRejected(); r == nil || r.Version != "bad-1" || !strings.Contains(r.Error, "default_placement") {
		t.Fatalf("last rejected %+v", r)
	}
	var rendered map[string]any
	if err := json.Unmarshal(store.Current().Doc, &rendered); err != nil || rendered["version"] != "v1" {
		t.Fatalf("served document %s (%v)", store.Current().Doc, err)
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
	store, _ := newTestStore(t, string(doc("v1")))
	src := NewFileSource(path, store, store.events, doc("v1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	time.Sleep(20 * time.Millisecond)

	within := func(version string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for store.Version() != version {
			if time.Now().After(deadline) {
				t.Fatalf("version %q not applied within 1 s (serving %q)", version, store.Version())
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
	if store.Version() != "v3" || store.LastRejected() == nil {
		t.Fatalf("invalid file: serving %q, last_rejected %v", store.Version(), store.LastRejected())
	}
	os.WriteFile(path, doc("v5"), 0o644)
	src.Reload()
	within("v5")
}

func newTestStore(t testing.TB, doc string) (*SnapshotStore, *eventSink) {
	t.Helper()
	sink := &eventSink{}
	store := NewStore(Options{Engine: engine.Tuned, Events: slog.New(slog.NewJSONHandler(sink, nil)), Metrics: obs.NewMetrics(engine.Tuned)})
	t.Cleanup(store.Close)
	if err := store.Apply([]byte(doc), SourceFile); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return store, sink
}

// upstreamFunc starts a loopback upstream and returns its endpoint.
func upstreamFunc(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// eventSink collects event-log lines for assertions.
type eventSink struct{ testkit.Buffer }

// has reports whether an event with msg and all the given fields was logged.
func (e *eventSink) has(msg string, fields map[string]string) bool {
	return testkit.HasEvent(e.String(), msg, fields)
}
