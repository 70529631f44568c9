package parity

import (
	"net/http"
	"testing"
	"time"
)

// Contract §2 rules 4 and 9: active health checks, the fallback chain, then
// default_placement, then 503 no_available_placement.
func TestFailoverOnHealth(t *testing.T) {
	t.Parallel()
	const (
		interval  = 100 // ms
		unhealthy = 2
		healthy   = 2
	)
	c := startCells(t, "p", "f1", "f2", "d")
	hc := healthCheck(interval, interval*8/10, unhealthy, healthy)
	r := startRouter(t, configDoc("failover-1", "d",
		map[string]string{"k": "p"},
		doc{
			"p":  placement("shared", c.endpoint("p"), doc{"fallback": "f1", "health_check": hc}),
			"f1": placement("shared", c.endpoint("f1"), doc{"fallback": "f2", "health_check": hc}),
			"f2": placement("shared", c.endpoint("f2"), doc{"health_check": hc}),
			"d":  placement("shared", c.endpoint("d"), doc{"health_check": hc}),
		}))
	routedTo := func(want string) func() (bool, string) {
		return func() (bool, string) {
			rp := r.get(t, "/", "k")
			got := rp.header.Get("X-Routed-To")
			return got == want, got
		}
	}
	bound := 3 * time.Second // thresholds × interval, with room for a loaded box

	t.Run("healthy primary serves", func(t *testing.T) {
		wantServed(t, r.get(t, "/", "k"), "p", "shared", "")
	})

	t.Run("unhealthy primary fails over to its fallback", func(t *testing.T) {
		failedBefore := c.counters(t, "p")
		c.chaos(t, "p", doc{"health": "fail"})
		eventually(t, bound, 10*time.Millisecond, "failover to f1", routedTo("f1"))
		// The switch must wait for unhealthy_threshold consecutive failed probes.
		if n := c.counters(t, "p").HealthFailed - failedBefore.HealthFailed; n < unhealthy {
			t.Errorf("router turned p unhealthy after %d failed probes, unhealthy_threshold is %d", n, unhealthy)
		}
		before := c.counters(t, "p").Requests
		for range 5 {
			wantServed(t, r.get(t, "/", "k"), "f1", "shared", "unhealthy")
		}
		if n := c.counters(t, "p").Requests - before; n != 0 {
			t.Errorf("unhealthy p still got %d requests", n)
		}
		if st := r.upstreams(t)["p"]; st.Health != "unhealthy" {
			t.Errorf("/debug/upstreams p health %q, want unhealthy", st.Health)
		}
	})

	t.Run("chain continues past an unhealthy fallback", func(t *testing.T) {
		c.chaos(t, "f1", doc{"health": "fail"})
		eventually(t, bound, 10*time.Millisecond, "failover to f2", routedTo("f2"))
		wantServed(t, r.get(t, "/", "k"), "f2", "shared", "unhealthy")
	})

	t.Run("default placement after the chain", func(t *testing.T) {
		c.chaos(t, "f2", doc{"health": "fail"})
		eventually(t, bound, 10*time.Millisecond, "failover to default d", routedTo("d"))
		wantServed(t, r.get(t, "/", "k"), "d", "shared", "unhealthy")
	})

	t.Run("no available placement is 503", func(t *testing.T) {
		c.chaos(t, "d", doc{"health": "fail"})
		eventually(t, bound, 10*time.Millisecond, "503 with every placement unhealthy", func() (bool, string) {
			rp := r.get(t, "/", "k")
			return rp.status == http.StatusServiceUnavailable, rp.header.Get("X-Routed-To")
		})
		before := c.totalRequests(t)
		rp := r.get(t, "/", "k")
		wantRouterError(t, rp, http.StatusServiceUnavailable, "no_available_placement")
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "", "X-Config-Version": "failover-1"})
		if n := c.totalRequests(t) - before; n != 0 {
			t.Errorf("cells got %d requests while none was available", n)
		}
	})

	t.Run("recovered primary serves again", func(t *testing.T) {
		okBefore := c.counters(t, "p")
		for _, name := range []string{"p", "f1", "f2", "d"} {
			c.resetChaos(t, name)
		}
		eventually(t, bound, 10*time.Millisecond, "primary p again", routedTo("p"))
		cc := c.counters(t, "p")
		if n := (cc.HealthProbes - cc.HealthFailed) - (okBefore.HealthProbes - okBefore.HealthFailed); n < healthy {
			t.Errorf("router turned p healthy after %d good probes, healthy_threshold is %d", n, healthy)
		}
		wantServed(t, r.get(t, "/", "k"), "p", "shared", "")
		if st := r.upstreams(t)["p"]; st.Health != "healthy" {
			t.Errorf("/debug/upstreams p health %q, want healthy", st.Health)
		}
	})
}
