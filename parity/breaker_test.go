package parity

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// Contract §2 rules 4 and 8: the per-placement circuit breaker.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	const (
		threshold = 3
		openMs    = 1500
	)
	c := startCells(t, "p", "f", "rp", "bc")
	refused := refusedAddr(t) // every connect fails
	r := startRouter(t, configDoc("breaker-1", "f",
		map[string]string{"k": "p", "kc": "c", "kr": "rp", "kb": "bc"},
		doc{
			"bc": placement("shared", c.endpoint("bc"), doc{"fallback": "f", "circuit_breaker": breaker(2, 60000)}),
			"rp": placement("shared", c.endpoint("rp"), doc{"fallback": "f", "retry": retry(3), "circuit_breaker": breaker(3, 60000)}),
			"p":  placement("shared", c.endpoint("p"), doc{"fallback": "f", "circuit_breaker": breaker(threshold, openMs)}),
			"c":  placement("shared", "http://"+refused, doc{"fallback": "f", "circuit_breaker": breaker(2, 60000)}),
			"f":  placement("shared", c.endpoint("f"), nil),
		}))
	status := func(code int) string { return "/?status=" + itoa(code) }
	// wantFromP sends to p and checks that p answered with the code while
	// its breaker was in one of the circuit states.
	wantFromP := func(t *testing.T, path string, code int, circuit ...string) {
		t.Helper()
		rp := r.get(t, path, "k")
		if rp.status != code || rp.header.Get("X-Cell") != "p" {
			t.Fatalf("want %d from cell p, got:\n%s", code, rp)
		}
		wantHeaders(t, rp, map[string]string{"X-Routed-To": "p", "X-Failover-Reason": ""})
		if st := rp.header.Get("X-Circuit-State"); !slices.Contains(circuit, st) {
			t.Errorf("X-Circuit-State %q, want one of %q", st, circuit)
		}
	}
	var openedAt time.Time
	open := func(t *testing.T) {
		t.Helper()
		for range threshold - 1 {
			wantFromP(t, status(500), 500, "closed")
		}
		// The failure that opens the breaker may report either state.
		wantFromP(t, status(500), 500, "closed", "open")
		openedAt = time.Now()
		rp := r.get(t, "/", "k")
		wantServed(t, rp, "f", "shared", "circuit_open")
		wantHeaders(t, rp, map[string]string{"X-Circuit-State": "closed"}) // f's breaker
	}

	t.Run("a success resets the consecutive count", func(t *testing.T) {
		for range threshold - 1 {
			wantFromP(t, status(500), 500, "closed")
		}
		wantFromP(t, status(404), 404, "closed") // a 4xx is not a failure
		for range threshold - 1 {
			wantFromP(t, status(503), 503, "closed")
		}
		wantFromP(t, "/", 200, "closed")
	})

	t.Run("consecutive 5xx open it", func(t *testing.T) {
		open(t)
		before := c.counters(t, "p").Requests
		for range 3 {
			wantServed(t, r.get(t, "/", "k"), "f", "shared", "circuit_open")
		}
		if n := c.counters(t, "p").Requests - before; n != 0 {
			t.Errorf("open breaker let %d requests through to p", n)
		}
		if st := r.upstreams(t)["p"]; st.Circuit != "open" {
			t.Errorf("/debug/upstreams p circuit %q, want open", st.Circuit)
		}
		if v := r.metrics(t).value(t, "cellbench_circuit_state", labels{"placement": "p"}); v != 2 {
			t.Errorf("cellbench_circuit_state{placement=p} = %v while open, want 2", v)
		}
		if !hasEvent(r.events("circuit_changed"), doc{"placement": "p", "from": "closed", "to": "open"}) {
			t.Errorf("no circuit_changed event {placement p, from closed, to open} on stderr")
		}
		// Still open well into open_ms.
		time.Sleep(time.Until(openedAt.Add(openMs * time.Millisecond * 2 / 3)))
		wantServed(t, r.get(t, "/", "k"), "f", "shared", "circuit_open")
		if n := c.counters(t, "p").Requests - before; n != 0 {
			t.Errorf("open breaker let %d requests through to p before open_ms passed", n)
		}
	})

	t.Run("half-open admits one trial and a success closes it", func(t *testing.T) {
		time.Sleep(time.Until(openedAt.Add(openMs*time.Millisecond + 300*time.Millisecond)))
		// open_ms has passed: the breaker is half-open before any request
		// arrives (§2.8), and the admin views say so.
		if st := r.upstreams(t)["p"]; st.Circuit != "half_open" {
			t.Errorf("/debug/upstreams p circuit %q after open_ms, want half_open", st.Circuit)
		}
		if v := r.metrics(t).value(t, "cellbench_circuit_state", labels{"placement": "p"}); v != 1 {
			t.Errorf("cellbench_circuit_state{placement=p} = %v after open_ms, want 1 (half-open)", v)
		}
		trial := r.sendAsync(req{path: "/?delay_ms=800", key: "k"})
		eventually(t, 2*time.Second, 10*time.Millisecond, "trial request in flight at p", func() (bool, string) {
			n := c.counters(t, "p").Inflight
			return n == 1, itoa(int(n)) + " in flight"
		})
		// While the trial runs, the breaker refuses everything else.
		wantServed(t, r.get(t, "/", "k"), "f", "shared", "circuit_open")
		res := <-trial
		if res.err != nil {
			t.Fatalf("trial request: %v", res.err)
		}
		rp := res.reply
		if rp.status != http.StatusOK || rp.header.Get("X-Cell") != "p" {
			t.Fatalf("trial: want 200 from p, got:\n%s", rp)
		}
		if st := rp.header.Get("X-Circuit-State"); st != "half_open" && st != "closed" {
			t.Errorf("trial X-Circuit-State %q, want half_open or closed", st)
		}
		wantFromP(t, "/", 200, "closed")
		if st := r.upstreams(t)["p"]; st.Circuit != "closed" {
			t.Errorf("/debug/upstreams p circuit %q, want closed", st.Circuit)
		}
	})

	t.Run("a failed trial opens it again", func(t *testing.T) {
		open(t)
		time.Sleep(time.Until(openedAt.Add(openMs*time.Millisecond + 300*time.Millisecond)))
		rp := r.get(t, status(500), "k")
		if rp.status != 500 || rp.header.Get("X-Cell") != "p" {
			t.Fatalf("trial: want 500 from p, got:\n%s", rp)
		}
		wantServed(t, r.get(t, "/", "k"), "f", "shared", "circuit_open")
		if st := r.upstreams(t)["p"]; st.Circuit != "open" {
			t.Errorf("/debug/upstreams p circuit %q, want open", st.Circuit)
		}
	})

	t.Run("every attempt counts, retries included", func(t *testing.T) {
		// One GET, three attempts answered 503: three failures, the threshold.
		rp := r.get(t, status(503), "kr")
		if rp.status != 503 || rp.header.Get("X-Upstream-Attempts") != "3" {
			t.Fatalf("want 503 after 3 attempts at rp, got:\n%s", rp)
		}
		wantServed(t, r.get(t, "/", "kr"), "f", "shared", "circuit_open")
	})

	t.Run("broken connections open it", func(t *testing.T) {
		for range 2 {
			wantRouterError(t, r.get(t, "/?close=1", "kb"), http.StatusBadGateway, "upstream_error")
		}
		wantServed(t, r.get(t, "/", "kb"), "f", "shared", "circuit_open")
	})

	t.Run("connect failures open it", func(t *testing.T) {
		for range 2 {
			wantRouterError(t, r.get(t, "/", "kc"), http.StatusBadGateway, "upstream_connect_error")
		}
		rp := r.get(t, "/", "kc")
		wantServed(t, rp, "f", "shared", "circuit_open")
		if st := r.upstreams(t)["c"]; st.Circuit != "open" {
			t.Errorf("/debug/upstreams c circuit %q, want open", st.Circuit)
		}
	})
}

// hasEvent reports whether one of the events has every field of want.
func hasEvent(events []map[string]any, want doc) bool {
	return slices.ContainsFunc(events, func(e map[string]any) bool { return testkit.EventMatches(e, want) })
}
