package parity

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
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
		took := eventually(t, bound, 10*time.Millisecond, "failover to f1", routedTo("f1"))
		t.Logf("p unhealthy %v after its probes began to fail", took.Round(time.Millisecond))
		if limit := time.Duration(unhealthy+1)*interval*time.Millisecond + time.Second; took > limit {
			t.Errorf("failover %v after the probes began to fail; %d failures %dms apart should take well under %v", took, unhealthy, interval, limit)
		}
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
		took := eventually(t, bound, 10*time.Millisecond, "primary p again", routedTo("p"))
		cc := c.counters(t, "p")
		if limit := time.Duration(healthy+1)*interval*time.Millisecond + time.Second; took > limit {
			t.Errorf("p healthy again %v after its probes recovered; should take well under %v", took, limit)
		}
		if n := (cc.HealthProbes - cc.HealthFailed) - (okBefore.HealthProbes - okBefore.HealthFailed); n < healthy {
			t.Errorf("router turned p healthy after %d good probes, healthy_threshold is %d", n, healthy)
		}
		wantServed(t, r.get(t, "/", "k"), "p", "shared", "")
		if st := r.upstreams(t)["p"]; st.Health != "healthy" {
			t.Errorf("/debug/upstreams p health %q, want healthy", st.Health)
		}
	})
}

// Contract §2 rule 9 details: the probe is a GET of the configured path,
// anything but a 2xx within timeout_ms is a failure, and probes never block
// requests.
func TestHealthProbes(t *testing.T) {
	t.Parallel()
	const probePath = "/hc/probe"
	var mode atomic.Value // how the upstream answers probes: "ok", "hang", "404"
	mode.Store("ok")
	var mu sync.Mutex
	var probes []string
	u := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		if req.URL.Path != probePath {
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nserved")
			return true
		}
		mu.Lock()
		probes = append(probes, req.Method+" "+req.URL.RequestURI())
		mu.Unlock()
		switch mode.Load() {
		case "hang":
			time.Sleep(time.Second)
			return false
		case "404":
			fmt.Fprintf(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		default:
			fmt.Fprintf(conn, "HTTP/1.1 204 No Content\r\n\r\n")
		}
		return true
	})
	c := startCells(t, "f")
	r := startRouter(t, configDoc("probes-1", "f",
		map[string]string{"k": "u"},
		doc{
			"u": placement("shared", u.endpoint(), doc{"fallback": "f", "health_check": doc{
				"path": probePath, "interval_ms": 100, "timeout_ms": 80, "unhealthy_threshold": 2, "healthy_threshold": 2}}),
			"f": placement("shared", c.endpoint("f"), nil),
		}))
	routedTo := func(want string) func() (bool, string) {
		return func() (bool, string) {
			rp := r.get(t, "/", "k")
			return rp.header.Get("X-Routed-To") == want, rp.header.Get("X-Routed-To")
		}
	}

	t.Run("probes GET the configured path every interval_ms", func(t *testing.T) {
		mu.Lock()
		before := len(probes)
		mu.Unlock()
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if n := len(probes) - before; n < 5 || n > 15 {
			t.Errorf("%d probes in one second with interval_ms 100, want about 10", n)
		}
		for _, p := range probes {
			if p != "GET "+probePath {
				t.Errorf("probe %q, want GET %s", p, probePath)
			}
		}
	})

	t.Run("a non-2xx probe is a failure", func(t *testing.T) {
		mode.Store("404")
		eventually(t, 3*time.Second, 10*time.Millisecond, "failover while probes get 404", routedTo("f"))
		mode.Store("ok")
		eventually(t, 3*time.Second, 10*time.Millisecond, "u healthy again", routedTo("u"))
	})

	t.Run("a probe timeout is a failure and never blocks requests", func(t *testing.T) {
		mode.Store("hang")
		start := time.Now()
		var slowest time.Duration
		eventually(t, 3*time.Second, 10*time.Millisecond, "failover while probes hang", func() (bool, string) {
			at := time.Now()
			rp := r.get(t, "/", "k")
			slowest = max(slowest, time.Since(at))
			return rp.header.Get("X-Routed-To") == "f", rp.header.Get("X-Routed-To")
		})
		if slowest > 300*time.Millisecond {
			t.Errorf("a request took %v while probes hung: probes block requests", slowest)
		}
		t.Logf("unhealthy %v after probes started hanging", time.Since(start).Round(time.Millisecond))
		mode.Store("ok")
		eventually(t, 4*time.Second, 10*time.Millisecond, "u healthy again", routedTo("u"))
	})
}

// Contract §2 rule 4: X-Failover-Reason says why the primary was skipped,
// whatever stopped the fallbacks after it.
func TestFailoverReasonIsThePrimarys(t *testing.T) {
	t.Parallel()
	c := startCells(t, "pb", "ph", "fh", "fb", "last")
	hc := healthCheck(100, 80, 1, 1)
	r := startRouter(t, configDoc("failover-reason-1", "last",
		map[string]string{"kb": "pb", "kh": "ph"},
		doc{
			// pb's breaker opens, its fallback fh is unhealthy.
			"pb": placement("shared", c.endpoint("pb"), doc{"fallback": "fh", "circuit_breaker": breaker(1, 60000)}),
			"fh": placement("shared", c.endpoint("fh"), doc{"fallback": "last", "health_check": hc}),
			// ph is unhealthy, its fallback fb's breaker is open.
			"ph":   placement("shared", c.endpoint("ph"), doc{"fallback": "fb", "health_check": hc}),
			"fb":   placement("shared", c.endpoint("fb"), doc{"fallback": "last", "circuit_breaker": breaker(1, 60000)}),
			"last": placement("shared", c.endpoint("last"), nil),
		}))
	if rp := r.get(t, "/?status=500", "kb"); rp.status != 500 {
		t.Fatalf("want 500 from pb, got:\n%s", rp)
	}
	c.chaos(t, "fh", doc{"health": "fail"})
	c.chaos(t, "ph", doc{"health": "fail"})
	eventually(t, 3*time.Second, 10*time.Millisecond, "pb's traffic at last", func() (bool, string) {
		rp := r.get(t, "/", "kb")
		return rp.header.Get("X-Routed-To") == "last", rp.header.Get("X-Routed-To")
	})
	wantServed(t, r.get(t, "/", "kb"), "last", "shared", "circuit_open")
	eventually(t, 3*time.Second, 10*time.Millisecond, "ph's traffic at fb", func() (bool, string) {
		rp := r.get(t, "/", "kh")
		return rp.header.Get("X-Routed-To") == "fb", rp.header.Get("X-Routed-To")
	})
	// One failure at fb (through ph's traffic) opens fb's breaker.
	if rp := r.get(t, "/?status=500", "kh"); rp.status != 500 || rp.header.Get("X-Routed-To") != "fb" {
		t.Fatalf("want 500 from fb, got:\n%s", rp)
	}
	wantServed(t, r.get(t, "/", "kh"), "last", "shared", "unhealthy")
}

// Contract §2 rules 3, 5 and 6 after a failover: the rate limit is the
// primary's, the concurrency and body limits are the serving placement's.
func TestLimitsAfterFailover(t *testing.T) {
	t.Parallel()
	c := startCells(t, "p", "f")
	r := startRouter(t, configDoc("failover-limits-1", "f",
		// One key per subtest: each key has its own budget of 2 at p.
		map[string]string{"k": "p", "kr": "p", "kb": "p", "kc": "p"},
		doc{
			"p": placement("shared", c.endpoint("p"), doc{"fallback": "f", "circuit_breaker": breaker(1, 60000),
				"rate_limit": rateLimit(0.1, 2, "routing_key")}),
			"f": placement("shared", c.endpoint("f"), doc{"concurrency_limit": 1, "max_request_body_bytes": 100}),
		}))
	// One 5xx opens p's breaker for the rest of the test: f serves p's keys.
	if rp := r.get(t, "/?status=500", "k"); rp.status != 500 {
		t.Fatalf("want 500 from p, got:\n%s", rp)
	}
	wantServed(t, r.get(t, "/", "kr"), "f", "shared", "circuit_open")

	t.Run("the primary's rate limit still applies", func(t *testing.T) {
		// kr has spent one of its 2 tokens above.
		wantServed(t, r.get(t, "/", "kr"), "f", "shared", "circuit_open")
		wantRateLimited(t, r.get(t, "/", "kr"))
	})

	t.Run("the serving placement's body limit applies", func(t *testing.T) {
		before := c.counters(t, "f").Requests
		rp := r.do(t, req{method: http.MethodPost, path: "/", key: "kb", body: newPattern(101), size: 101})
		wantRouterError(t, rp, http.StatusRequestEntityTooLarge, "body_too_large")
		wantHeaders(t, rp, map[string]string{"X-Routed-To": "f", "X-Failover-Reason": "circuit_open"})
		if n := c.counters(t, "f").Requests - before; n != 0 {
			t.Errorf("cell f got %d requests over its body limit", n)
		}
	})

	t.Run("the serving placement's concurrency limit applies", func(t *testing.T) {
		slow := r.sendAsync(req{path: "/?delay_ms=1000", key: "kc"})
		eventually(t, 3*time.Second, 10*time.Millisecond, "slow request in flight at f", func() (bool, string) {
			return c.counters(t, "f").Inflight == 1, ""
		})
		rp := r.get(t, "/", "kc")
		wantRouterError(t, rp, http.StatusServiceUnavailable, "concurrency_limited")
		wantHeaders(t, rp, map[string]string{"X-Routed-To": "f", "X-Failover-Reason": "circuit_open", "Retry-After": "1"})
		<-slow
	})
}
