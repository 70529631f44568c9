package parity

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// Contract §2 rule 7: which failures are retried, X-Upstream-Attempts, and
// what the client gets after the last attempt.
func TestRetries(t *testing.T) {
	t.Parallel()
	const attempts = 3
	c := startCells(t, "r", "once")
	refused := refusedAddr(t)
	// flaky answers 503 and 200 in turn, so each GET fails its first
	// attempt and succeeds on the retry.
	var flakyCount atomic.Int64
	flaky := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		n := flakyCount.Add(1)
		status, body := "503 Service Unavailable", "flaky: try again"
		if n%2 == 0 {
			status, body = "200 OK", "flaky: ok"
		}
		fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Length: %d\r\nX-Attempt: %d\r\n\r\n%s", status, len(body), n, body)
		return true
	})
	// idle answers with keep-alive, then closes the connection 100 ms later,
	// as upstreams with a short idle timeout do.
	idle := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		io.Copy(io.Discard, req.Body)
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nidle")
		time.Sleep(100 * time.Millisecond)
		return false
	})
	// garbled answers with bytes that are not an HTTP response head.
	garbled := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		io.Copy(io.Discard, req.Body)
		fmt.Fprintf(conn, "this is not http\r\n\r\n")
		return false
	})
	r := startRouter(t, configDoc("retry-1", "r",
		map[string]string{"k": "r", "kd": "down", "k1": "once", "kf": "flaky", "ki": "idle", "kg": "garbled"},
		doc{
			"garbled": placement("shared", garbled.endpoint(), doc{"retry": retry(2)}),
			"idle":    placement("shared", idle.endpoint(), nil),
			"r":       placement("shared", c.endpoint("r"), doc{"retry": retry(attempts)}),
			"down":    placement("shared", "http://"+refused, doc{"retry": retry(attempts)}),
			"once":    placement("shared", c.endpoint("once"), nil),
			"flaky":   placement("shared", flaky.endpoint(), doc{"retry": retry(attempts)}),
		}))

	// sentToR counts the client requests for placement r: every request the
	// cell saw beyond them was a retry.
	var sentToR int64
	// try sends q to placement r and checks status, attempts and how many
	// requests cell r saw.
	try := func(t *testing.T, q req, wantStatus, wantAttempts int) {
		t.Helper()
		before := c.counters(t, "r").Requests
		sentToR++
		rp := r.do(t, q)
		if rp.status != wantStatus {
			t.Fatalf("%s %s: status %d, want %d:\n%s", q.methodOr(), q.path, rp.status, wantStatus, rp)
		}
		if rp.header.Get("X-Cell") != "r" {
			t.Errorf("%s %s: answer not passed through from cell r:\n%s", q.methodOr(), q.path, rp)
		}
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": itoa(wantAttempts), "X-Routed-To": "r"})
		if n := c.counters(t, "r").Requests - before; n != int64(wantAttempts) {
			t.Errorf("%s %s: cell r saw %d requests, want %d", q.methodOr(), q.path, n, wantAttempts)
		}
	}

	t.Run("connect failure is retried for every method", func(t *testing.T) {
		for _, q := range []req{
			{path: "/", key: "kd"},
			{method: http.MethodPost, path: "/", key: "kd", body: newPattern(100), size: 100},
		} {
			rp := r.do(t, q)
			wantRouterError(t, rp, http.StatusBadGateway, "upstream_connect_error")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": itoa(attempts), "X-Routed-To": "down",
				"X-Route-Reason": "shared", "X-Circuit-State": "closed", "X-Config-Version": "retry-1"})
		}
	})

	// docs/contract.md §2.7: a connection the upstream broke before a
	// complete response head is 502 upstream_error, retried like a 502.
	t.Run("an upstream that closes without answering", func(t *testing.T) {
		for _, tc := range []struct {
			q        req
			attempts int
		}{
			{req{path: "/?close=1", key: "k"}, attempts},
			{req{method: http.MethodPost, path: "/?close=1", key: "k", body: newPattern(10), size: 10}, 1},
		} {
			before := c.counters(t, "r").Requests
			sentToR++
			rp := r.do(t, tc.q)
			if rp.status != http.StatusBadGateway {
				t.Fatalf("%s: want 502, got:\n%s", tc.q.methodOr(), rp)
			}
			wantRouterError(t, rp, http.StatusBadGateway, "upstream_error")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": itoa(tc.attempts), "X-Routed-To": "r"})
			if st := rp.header.Get("Server-Timing"); !serverTiming.MatchString(st) {
				t.Errorf("%s: Server-Timing %q after an upstream attempt, want upstream;dur=<ms>", tc.q.methodOr(), st)
			}
			if n := c.counters(t, "r").Requests - before; n != int64(tc.attempts) {
				t.Errorf("%s: cell r saw %d requests, want %d", tc.q.methodOr(), n, tc.attempts)
			}
		}
	})

	t.Run("502 503 504 are retried for idempotent methods without a body", func(t *testing.T) {
		for _, code := range []int{502, 503, 504} {
			try(t, req{path: "/?status=" + itoa(code), key: "k"}, code, attempts)
		}
		for _, m := range []string{http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete} {
			try(t, req{method: m, path: "/?status=503", key: "k"}, 503, attempts)
		}
		// The access log counts the same attempts; a passed-through status
		// is not a router error.
		try(t, req{path: "/?status=503", key: "k", header: map[string]string{"X-Request-Id": "retry-log-1"}}, 503, attempts)
		l := r.accessLineFor(t, "retry-log-1")
		if l["attempts"] != float64(attempts) || l["status"] != float64(503) || l["error"] != "" {
			t.Errorf("access line attempts %v status %v error %q, want %d, 503 and no error", l["attempts"], l["status"], l["error"], attempts)
		}
	})

	t.Run("POST and PATCH are not retried", func(t *testing.T) {
		try(t, req{method: http.MethodPost, path: "/?status=503", key: "k", body: newPattern(10), size: 10}, 503, 1)
		try(t, req{method: http.MethodPost, path: "/?status=503", key: "k"}, 503, 1)
		try(t, req{method: http.MethodPatch, path: "/?status=502", key: "k"}, 502, 1)
	})

	t.Run("a request with a body is not retried", func(t *testing.T) {
		try(t, req{path: "/?status=503", key: "k", body: newPattern(10), size: 10}, 503, 1)
		try(t, req{method: http.MethodPut, path: "/?status=503", key: "k", body: newPattern(10), size: 10}, 503, 1)
		try(t, req{method: http.MethodPut, path: "/?status=503", key: "k", body: newPattern(10), size: -1}, 503, 1)
	})

	t.Run("other statuses pass through without retry", func(t *testing.T) {
		try(t, req{path: "/?status=500", key: "k"}, 500, 1)
		try(t, req{path: "/?status=404", key: "k"}, 404, 1)
		try(t, req{path: "/?status=429", key: "k"}, 429, 1)
	})

	t.Run("a malformed response head is upstream_error", func(t *testing.T) {
		for _, tc := range []struct {
			q        req
			attempts string
		}{
			{req{path: "/", key: "kg"}, "2"},
			{req{method: http.MethodPost, path: "/", key: "kg", body: newPattern(10), size: 10}, "1"},
		} {
			rp := r.do(t, tc.q)
			wantRouterError(t, rp, http.StatusBadGateway, "upstream_error")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": tc.attempts, "X-Routed-To": "garbled"})
		}
	})

	t.Run("without retry config there is one attempt", func(t *testing.T) {
		before := c.counters(t, "once").Requests
		rp := r.get(t, "/?status=503", "k1")
		if rp.status != 503 || rp.header.Get("X-Cell") != "once" {
			t.Fatalf("want 503 from cell once, got:\n%s", rp)
		}
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "1"})
		if n := c.counters(t, "once").Requests - before; n != 1 {
			t.Errorf("cell once saw %d requests, want 1", n)
		}
	})

	t.Run("a retry that succeeds is answered with the success", func(t *testing.T) {
		for range 3 {
			rp := r.get(t, "/", "kf")
			if rp.status != http.StatusOK || string(rp.body) != "flaky: ok" {
				t.Fatalf("want the second attempt's 200, got:\n%s", rp)
			}
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "2", "X-Routed-To": "flaky"})
		}
	})

	t.Run("an upstream connection closed while idle is not an error", func(t *testing.T) {
		// The router's pooled connection dies between requests; a request
		// that finds it dead has sent nothing the upstream acted on, so it
		// must go out on a fresh connection, for POST too, with max_attempts 1.
		for i := range 4 {
			q := req{path: "/", key: "ki"}
			if i%2 == 1 {
				q = req{method: http.MethodPost, path: "/", key: "ki", body: newPattern(10), size: 10}
			}
			rp := r.do(t, q)
			if rp.status != http.StatusOK || string(rp.body) != "idle" {
				t.Errorf("request %d (%s) after the upstream closed its idle connection: got\n%s", i+1, q.methodOr(), rp)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})

	t.Run("retries are counted in metrics", func(t *testing.T) {
		retries := c.counters(t, "r").Requests - sentToR
		if retries == 0 {
			t.Fatalf("no retries happened above")
		}
		if v := r.metrics(t).value(t, "cellbench_retries_total", labels{"placement": "r"}); v != float64(retries) {
			t.Errorf("cellbench_retries_total{placement=r} = %v, but cell r saw %d attempts beyond the %d requests sent", v, retries, sentToR)
		}
	})
}
