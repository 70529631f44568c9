package resilience

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/config"
	"cellbench/internal/testkit"
)

func TestHealthCheckerThresholds(t *testing.T) {
	var failing atomic.Bool
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.URL.Path != "/health" {
			t.Errorf("probe path %q", r.URL.Path)
		}
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	endpoint := srv.URL
	var changes atomic.Int64
	h := &Health{}
	c := StartChecker(context.Background(), NewProbeClient(), "p", endpoint+"/",
		config.HealthCheck{Path: "/health", IntervalMs: 20, TimeoutMs: 10, UnhealthyThreshold: 3, HealthyThreshold: 2},
		h, func(string, string, string) { changes.Add(1) })
	defer c.Close()

	testkit.WaitFor(t, 3*time.Second, "3 probes", func() bool { return probes.Load() >= 3 })
	if h.Status() != "healthy" {
		t.Fatal("healthy upstream reported unhealthy")
	}
	failing.Store(true)
	start := probes.Load()
	testkit.WaitFor(t, 3*time.Second, "unhealthy", func() bool { return h.Status() == "unhealthy" })
	if n := probes.Load() - start; n < 3 {
		t.Fatalf("unhealthy after %d failed probes, threshold is 3", n)
	}
	failing.Store(false)
	testkit.WaitFor(t, 3*time.Second, "healthy again", func() bool { return h.Status() == "healthy" })
	if changes.Load() != 2 {
		t.Fatalf("%d transitions, want 2", changes.Load())
	}
}
