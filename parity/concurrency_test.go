package parity

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Contract §2 rule 5: the concurrency limit of the serving placement answers
// 503 concurrency_limited with Retry-After: 1, at once.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit = 2
	c := startCells(t, "p")
	r := startRouter(t, configDoc("concurrency-1", "p",
		map[string]string{"k": "p"},
		doc{"p": placement("shared", c.endpoint("p"), doc{"concurrency_limit": limit})}))

	var slow []<-chan sent
	for range limit {
		slow = append(slow, r.sendAsync(req{path: "/?delay_ms=1500", key: "k"}))
	}
	eventually(t, 3*time.Second, 10*time.Millisecond, "both slow requests in flight at p", func() (bool, string) {
		n := c.counters(t, "p").Inflight
		return n == limit, itoa(int(n)) + " in flight"
	})
	if st := r.upstreams(t)["p"]; st.Inflight == nil || *st.Inflight != limit {
		t.Errorf("/debug/upstreams p inflight %v, want %d", st.Inflight, limit)
	}

	before := c.counters(t, "p").Requests
	for _, q := range []req{
		{path: "/", key: "k"},
		{method: http.MethodPost, path: "/", key: "k", body: newPattern(10), size: 10},
	} {
		start := time.Now()
		rp := r.do(t, q)
		took := time.Since(start)
		wantRouterError(t, rp, http.StatusServiceUnavailable, "concurrency_limited")
		wantHeaders(t, rp, map[string]string{"Retry-After": "1", "X-Routed-To": "p", "X-Upstream-Attempts": ""})
		if took > 500*time.Millisecond {
			t.Errorf("concurrency_limited after %v: the router queued the request", took)
		}
	}
	if n := c.counters(t, "p").Requests - before; n != 0 {
		t.Errorf("cell p got %d requests over the concurrency limit", n)
	}

	for i, ch := range slow {
		if res := <-ch; res.err != nil || res.status != http.StatusOK {
			t.Errorf("slow request %d: %v, want 200:\n%s", i, res.err, res.reply)
		}
	}
	wantServed(t, r.get(t, "/", "k"), "p", "shared", "")

	// A client that leaves frees its slot at once, and the router drops the
	// upstream request rather than letting it run to the end.
	cancelledBefore := c.counters(t, "p").Cancelled
	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	hr, _ := http.NewRequest(http.MethodGet, r.base+"/?delay_ms=5000", nil)
	hr.Header.Set("X-Routing-Key", "k")
	hr.Header.Set("X-Request-Id", "client-left-1")
	if resp, err := impatient.Do(hr); err == nil {
		resp.Body.Close()
		t.Fatalf("the 5 s request answered within 300 ms: %s", resp.Status)
	}
	eventually(t, time.Second, 20*time.Millisecond, "upstream request cancelled and slot freed after the client left", func() (bool, string) {
		cc := c.counters(t, "p")
		routerInflight := int64(-1) // -1: the field is missing
		if st := r.upstreams(t)["p"]; st.Inflight != nil {
			routerInflight = *st.Inflight
		}
		return cc.Cancelled > cancelledBefore && cc.Inflight == 0 && routerInflight == 0,
			fmt.Sprintf("cell: %d cancelled, %d in flight; router inflight %d", cc.Cancelled-cancelledBefore, cc.Inflight, routerInflight)
	})
	for range limit {
		wantServed(t, r.get(t, "/", "k"), "p", "shared", "")
	}
	// docs/contract.md §3: logged as 499 client_closed.
	if l := r.accessLineFor(t, "client-left-1"); l["status"] != float64(499) || l["error"] != "client_closed" {
		t.Errorf("access line of the request whose client left: status %v error %v, want 499 client_closed", l["status"], l["error"])
	}
}
