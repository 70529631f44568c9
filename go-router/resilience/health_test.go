package resilience

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/config"
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

	waitFor(t, func() bool { return probes.Load() >= 3 })
	if h.Status() != "healthy" {
		t.Fatal("healthy upstream reported unhealthy")
	}
	failing.Store(true)
	start := probes.Load()
	waitFor(t, func() bool { return h.Status() == "unhealthy" })
	if n := probes.Load() - start; n < 3 {
		t.Fatalf("unhealthy after %d failed probes, threshold is 3", n)
	}
	failing.Store(false)
	waitFor(t, func() bool { return h.Status() == "healthy" })
	if changes.Load() != 2 {
		t.Fatalf("%d transitions, want 2", changes.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 3 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
