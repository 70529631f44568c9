package parity

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// wantRateLimited checks one 429 of the contract: rate_limited, with a
// Retry-After of whole seconds >= 1, and no upstream attempt.
func wantRateLimited(t testing.TB, rp reply) {
	t.Helper()
	wantRouterError(t, rp, http.StatusTooManyRequests, "rate_limited")
	if n, err := strconv.Atoi(rp.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", rp.header.Get("Retry-After"))
	}
	wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": ""})
}

// Contract §2 rule 3: per-key and per-placement limits. The algorithm may
// differ between routers, so a burst is only held to bounds every
// reasonable limiter meets: something passes, the excess is refused, and
// no more than burst plus what refilled meanwhile passes.
func TestRateLimitScopes(t *testing.T) {
	t.Parallel()
	const burst = 3
	c := startCells(t, "pk", "pp", "ps")
	r := startRouter(t, configDoc("ratelimit-1", "pk",
		map[string]string{"a": "pk", "b": "pk", "c": "pp", "d": "pp", "s": "ps"},
		doc{
			"ps": placement("shared", c.endpoint("ps"), doc{"rate_limit": rateLimit(0.2, 1, "placement")}),
			"pk": placement("shared", c.endpoint("pk"), doc{"rate_limit": rateLimit(1, burst, "routing_key")}),
			"pp": placement("shared", c.endpoint("pp"), doc{"rate_limit": rateLimit(1, burst, "placement")}),
		}))

	// exhaust sends 3×burst requests at once for a key and returns how many
	// passed; every refusal must be a well-formed 429 that never reached the cell.
	exhaust := func(t *testing.T, key, cell string) int {
		t.Helper()
		before := c.counters(t, cell).Requests
		start := time.Now()
		passed := 0
		for range 3 * burst {
			rp := r.get(t, "/", key)
			switch rp.status {
			case http.StatusOK:
				passed++
			default:
				wantRateLimited(t, rp)
			}
		}
		refilled := int(time.Since(start).Seconds()) + 1
		t.Logf("key %s: %d of %d back-to-back requests passed (burst %d, 1 rps)", key, passed, 3*burst, burst)
		if passed < 1 || passed > burst+refilled {
			t.Errorf("key %s: %d of %d requests passed, want 1..%d", key, passed, 3*burst, burst+refilled)
		}
		if n := c.counters(t, cell).Requests - before; n != int64(passed) {
			t.Errorf("cell %s got %d requests, %d passed the limit", cell, n, passed)
		}
		return passed
	}

	t.Run("per routing key", func(t *testing.T) {
		exhaust(t, "a", "pk")
		// Another key of the same placement has its own budget.
		wantServed(t, r.get(t, "/", "b"), "pk", "shared", "")
		// The unrouted key lands on pk too, with yet another budget.
		wantServed(t, r.get(t, "/", "zz-unrouted"), "pk", "default", "")
	})

	t.Run("Retry-After is the wait for the next token", func(t *testing.T) {
		// 0.2 rps, burst 1: once the one token is spent the next comes in 5 s.
		wantServed(t, r.get(t, "/", "s"), "ps", "shared", "")
		rp := r.get(t, "/", "s")
		wantRateLimited(t, rp)
		if n, _ := strconv.Atoi(rp.header.Get("Retry-After")); n < 4 || n > 5 {
			t.Errorf("Retry-After %q, want 5 (or 4): the next request can pass in about 5 s", rp.header.Get("Retry-After"))
		}
	})

	t.Run("per placement", func(t *testing.T) {
		exhaust(t, "c", "pp")
		// The placement's budget is shared by every key.
		wantRateLimited(t, r.get(t, "/", "d"))
	})
}

// Contract §2 rule 3, the observable contract: under a sustained offered
// load of 2× requests_per_second on one key, the accepted rate after the
// first second is within 15 % of requests_per_second.
// Not parallel: it measures rates and needs the CPU to itself.
func TestRateLimitSustained(t *testing.T) {
	const (
		rps     = 50
		offered = 2 * rps
		run     = 4 * time.Second
		warmup  = time.Second
	)
	c := startCells(t, "p")
	r := startRouter(t, configDoc("ratelimit-2", "p",
		map[string]string{"load": "p"},
		doc{"p": placement("shared", c.endpoint("p"), doc{"rate_limit": rateLimit(rps, 10, "routing_key")})}))
	r.http.Transport = &http.Transport{MaxIdleConnsPerHost: 64}

	type result struct {
		at time.Duration
		sent
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / offered)
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < run {
		<-tick.C
		at := time.Since(start)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp, err := r.send(req{path: "/", key: "load"})
			mu.Lock()
			results = append(results, result{at, sent{rp, err}})
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, res := range results { // checked here: t.Fatal is for this goroutine only
		if res.err != nil {
			t.Fatalf("request at %v: %v", res.at, res.err)
		}
		if res.status != http.StatusOK {
			wantRateLimited(t, res.reply)
		}
	}

	var sent, accepted int
	for _, res := range results {
		if res.at < warmup {
			continue
		}
		sent++
		if res.status == http.StatusOK {
			accepted++
		}
	}
	window := (run - warmup).Seconds()
	rate := float64(accepted) / window
	t.Logf("after the first second: offered %.1f rps, accepted %.1f rps (limit %d)", float64(sent)/window, rate, rps)
	if float64(sent)/window < 1.5*rps {
		t.Fatalf("the load generator only offered %.1f rps; the measurement needs about %d", float64(sent)/window, offered)
	}
	if rate < 0.85*rps || rate > 1.15*rps {
		t.Errorf("accepted %.1f rps under %d rps offered, want %d ± 15%%", rate, offered, rps)
	}
}
