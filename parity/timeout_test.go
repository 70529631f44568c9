package parity

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Contract §2 rule 7 (response-header timeout → 504 upstream_timeout) and the
// Server-Timing header of §3.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	const headerMs = 300
	c := startCells(t, "slow", "slow1", "tb")
	blackhole := blackholeAddr(t)
	timeouts := doc{"response_header_ms": headerMs, "connect_ms": 500}
	r := startRouter(t, configDoc("timeouts-1", "slow",
		map[string]string{"ks": "slow", "k1": "slow1", "kb": "tb", "kh": "hole"},
		doc{
			"slow":  placement("shared", c.endpoint("slow"), doc{"timeouts": timeouts, "retry": retry(2)}),
			"slow1": placement("shared", c.endpoint("slow1"), doc{"timeouts": timeouts}),
			"tb":    placement("shared", c.endpoint("tb"), doc{"timeouts": timeouts, "fallback": "slow1", "circuit_breaker": breaker(2, 60000)}),
			"hole":  placement("shared", "http://"+blackhole, doc{"timeouts": doc{"connect_ms": 250}, "retry": retry(2)}),
		}))

	timed := func(t *testing.T, q req) (reply, time.Duration) {
		start := time.Now()
		rp := r.do(t, q)
		return rp, time.Since(start)
	}

	t.Run("slow headers are 504 upstream_timeout", func(t *testing.T) {
		rp, took := timed(t, req{path: "/?delay_ms=3000", key: "k1"})
		wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "1", "X-Routed-To": "slow1"})
		if took < headerMs*time.Millisecond || took > headerMs*time.Millisecond+700*time.Millisecond {
			t.Errorf("504 after %v, want about %dms", took, headerMs)
		}
	})

	t.Run("a timeout is retried for GET", func(t *testing.T) {
		before := c.counters(t, "slow").Requests
		rp, took := timed(t, req{path: "/?delay_ms=3000", key: "ks"})
		wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "2"})
		if took < 2*headerMs*time.Millisecond || took > 2*headerMs*time.Millisecond+900*time.Millisecond {
			t.Errorf("504 after %v, want about 2×%dms", took, headerMs)
		}
		if n := c.counters(t, "slow").Requests - before; n != 2 {
			t.Errorf("cell slow saw %d requests, want 2", n)
		}
	})

	t.Run("a timeout is not retried for POST", func(t *testing.T) {
		rp, _ := timed(t, req{method: http.MethodPost, path: "/?delay_ms=3000", key: "ks", body: newPattern(10), size: 10})
		wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "1"})
	})

	t.Run("connect timeout is a connect failure", func(t *testing.T) {
		// connect_ms 250 against an address that never completes a
		// handshake: two attempts (retried for POST too), then 502.
		for _, q := range []req{
			{path: "/", key: "kh"},
			{method: http.MethodPost, path: "/", key: "kh", body: newPattern(10), size: 10},
		} {
			rp, took := timed(t, q)
			wantRouterError(t, rp, http.StatusBadGateway, "upstream_connect_error")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "2", "X-Routed-To": "hole"})
			if took < 2*250*time.Millisecond || took > 1900*time.Millisecond {
				t.Errorf("%s: 502 after %v, want about 2×250ms (connect_ms, not the 1000ms default)", q.methodOr(), took)
			}
		}
	})

	t.Run("headers within the timeout pass", func(t *testing.T) {
		rp, took := timed(t, req{path: "/?delay_ms=150", key: "k1"})
		wantServed(t, rp, "slow1", "shared", "")
		// Server-Timing is the upstream time of the (last) attempt.
		m := serverTiming.FindStringSubmatch(rp.header.Get("Server-Timing"))
		if m == nil {
			t.Fatalf("Server-Timing %q", rp.header.Get("Server-Timing"))
		}
		dur, _ := strconv.ParseFloat(m[1], 64)
		if dur < 140 || dur > float64(took.Milliseconds())+5 {
			t.Errorf("Server-Timing upstream;dur=%v, want >= the cell's 150ms delay and <= the %v the request took", dur, took)
		}
	})

	t.Run("Server-Timing times the last attempt only", func(t *testing.T) {
		// Two attempts of 150 ms each (503 is retried for GET).
		rp, took := timed(t, req{path: "/?status=503&delay_ms=150", key: "ks"})
		if rp.status != 503 || rp.header.Get("X-Upstream-Attempts") != "2" {
			t.Fatalf("want 503 after 2 attempts, got:\n%s", rp)
		}
		m := serverTiming.FindStringSubmatch(rp.header.Get("Server-Timing"))
		if m == nil {
			t.Fatalf("Server-Timing %q", rp.header.Get("Server-Timing"))
		}
		dur, _ := strconv.ParseFloat(m[1], 64)
		if dur < 140 || dur > 290 {
			t.Errorf("Server-Timing upstream;dur=%v after two 150 ms attempts (%v in all), want the last attempt's ~150", dur, took)
		}
	})

	t.Run("timeouts count as breaker failures", func(t *testing.T) {
		for range 2 {
			rp, _ := timed(t, req{path: "/?delay_ms=3000", key: "kb"})
			wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		}
		wantServed(t, r.get(t, "/", "kb"), "slow1", "shared", "circuit_open")
	})
}
