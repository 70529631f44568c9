package parity

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Contract §2 rule 6: max_request_body_bytes of the serving placement.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	c := startCells(t, "p")
	r := startRouter(t, configDoc("bodylimit-1", "p",
		map[string]string{"k": "p"},
		doc{"p": placement("shared", c.endpoint("p"), doc{"max_request_body_bytes": limit})}))

	t.Run("Content-Length over the limit is 413 before the upstream", func(t *testing.T) {
		before := c.counters(t, "p").Requests
		for _, n := range []int64{limit + 1, 5 * limit} {
			rp := r.do(t, req{method: http.MethodPost, path: "/", key: "k", body: newPattern(n), size: n})
			wantRouterError(t, rp, http.StatusRequestEntityTooLarge, "body_too_large")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": ""})
		}
		if n := c.counters(t, "p").Requests - before; n != 0 {
			t.Errorf("cell p was contacted %d times for bodies declared over the limit", n)
		}
	})

	t.Run("a body at the limit passes", func(t *testing.T) {
		for _, size := range []int64{limit, -1} {
			rp := r.do(t, req{method: http.MethodPost, path: "/", key: "k", body: newPattern(limit), size: size})
			wantServed(t, rp, "p", "shared", "")
			if e := rp.echo(t); e.BodyBytes != limit || e.BodySHA256 != patternSHA256(limit) {
				t.Errorf("cell got %d bytes (sha %s), want %d (sha %s)", e.BodyBytes, e.BodySHA256, limit, patternSHA256(limit))
			}
		}
	})

	t.Run("a chunked body growing past the limit is 413", func(t *testing.T) {
		for _, total := range []int64{limit + 1, 20 * limit} {
			rp := r.do(t, req{method: http.MethodPost, path: "/", key: "k", body: newPattern(total), size: -1})
			wantRouterError(t, rp, http.StatusRequestEntityTooLarge, "body_too_large")
		}
	})

	t.Run("a slowly streamed chunked body is cut at the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			// Half the limit, a pause, then past it: the router must count
			// across chunks, and must not wait for the (never-ending) rest.
			pw.Write(pattern(limit / 2))
			time.Sleep(200 * time.Millisecond)
			pw.Write(pattern(limit))
			time.Sleep(3 * time.Second)
			pw.Close()
		}()
		start := time.Now()
		rp := r.do(t, req{method: http.MethodPost, path: "/", key: "k", body: pr, size: -1})
		wantRouterError(t, rp, http.StatusRequestEntityTooLarge, "body_too_large")
		if took := time.Since(start); took > 2500*time.Millisecond {
			t.Errorf("413 only after %v: the router waited for the rest of the body", took)
		}
	})
}
