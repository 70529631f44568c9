package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cellbench/go-router/routing"
)

// ServeHTTP runs contract section 2 for one request: route, rate limit,
// select an available placement, apply its limits, proxy with retries.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange{start: time.Now(), snap: rt.current.Load()}
	defer rt.finish(w, r, &ex)

	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		ex.requestID = v[0]
	} else {
		ex.requestID = rt.ids.next()
	}
	// net/http reads a request carrying both Content-Length and
	// Transfer-Encoding: chunked as chunked, drops Content-Length before the
	// handler can see it, and keeps the connection open, so bytes after the
	// chunked body would run as the next request. The contract (RFC 9112
	// §6.1) requires closing the connection after such a message; as the
	// two cases are indistinguishable here, every chunked request closes
	// its connection after the response.
	if r.ContentLength < 0 {
		w.Header()["Connection"] = connectionClose
	}
	// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
	// framing, and the connection must close after it. net/http drops that
	// field of an HTTP/1.0 request before the handler and reads no body, so
	// what follows would run as the next request: every HTTP/1.0 request
	// without Content-Length closes its connection.
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 && r.Header["Content-Length"] == nil {
		w.Header()["Connection"] = connectionClose
	}

	// A reverse proxy offers no tunnels: a CONNECT (RFC 9110 §9.3.6) is
	// refused before routing, so that no 2xx ever suggests one is open.
	if r.Method == http.MethodConnect {
		rt.fail(w, &ex, http.StatusNotImplemented, codeMethodNotSupported, "CONNECT is not supported by a reverse proxy")
		return
	}
	// RFC 9112 §3.2: origin-form, absolute-form or, for OPTIONS, "*".
	// net/http passes on any target url.ParseRequestURI takes, such as
	// "x:80" (it would go upstream as "GET 80") or "*" with GET.
	if !validTarget(r) {
		w.Header()["Connection"] = connectionClose
		rt.fail(w, &ex, http.StatusBadRequest, codeBadRequest, "the request target must be an absolute path or URI")
		return
	}
	// A fragment is no part of a request-target: it never goes upstream
	// (url.ParseRequestURI leaves it in the path).
	if i := strings.IndexByte(r.RequestURI, '#'); i >= 0 {
		r.RequestURI = r.RequestURI[:i]
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			r.URL = u
		}
	}

	key := ""
	if v := r.Header["X-Routing-Key"]; len(v) > 0 {
		key = v[0]
	}
	if key == "" {
		rt.fail(w, &ex, http.StatusBadRequest, codeMissingRoutingKey, "the X-Routing-Key header is required")
		return
	}
	ex.routingKey = key
	s := ex.snap
	primary, reason := s.table.Route(key)
	ex.routed, ex.reason, ex.primary = true, reason, s.placements[primary]

	if lim := ex.primary.limiter; lim != nil {
		if ok, after := lim.allow(key, ex.start); !ok {
			ex.primary.metrics.rateLimited.Inc()
			ex.retryAfter = after
			rt.fail(w, &ex, http.StatusTooManyRequests, codeRateLimited, "rate limit of placement "+ex.primary.name+" exceeded")
			return
		}
	}

	// permit is the breaker permit of the selected placement, taken while
	// checking its availability. X-Circuit-State reports the state that
	// admitted the request: the attempt's own outcome shows in its status.
	var permit func(error)
	serving, failover, ok := routing.Select(s.table.Candidates(primary), func(i int) routing.Availability {
		p := s.placements[i]
		if p.health.unhealthy.Load() {
			return routing.Unhealthy
		}
		if p.breaker != nil {
			done, ok := p.breaker.allow()
			if !ok {
				return routing.CircuitOpen
			}
			permit = done
			ex.circuit = p.breaker.state()
		} else {
			ex.circuit = circuitClosed
		}
		return routing.Available
	})
	ex.failover = failover
	if !ok {
		rt.fail(w, &ex, http.StatusServiceUnavailable, codeNoAvailablePlacement, "no placement is available for this routing key")
		return
	}
	p := s.placements[serving]
	ex.serving = p

	inflight := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if p.concurrencyLimit > 0 && inflight > p.concurrencyLimit {
		release(permit, errNotAttempted)
		ex.retryAfter = 1
		rt.fail(w, &ex, http.StatusServiceUnavailable, codeConcurrencyLimited, "concurrency limit of placement "+p.name+" reached")
		return
	}
	if p.maxBodyBytes > 0 && r.ContentLength > p.maxBodyBytes {
		release(permit, errNotAttempted)
		rt.fail(w, &ex, http.StatusRequestEntityTooLarge, codeBodyTooLarge, bodyTooLargeMessage(p))
		return
	}
	rt.proxy(w, r, &ex, p, permit)
}

// validTarget reports whether the request target is one a reverse proxy
// serves: origin-form, absolute-form of an http(s) URI with a host, or
// "*" for OPTIONS, made of URI characters only.
func validTarget(r *http.Request) bool {
	t := r.RequestURI
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f { // no URI character (RFC 3986)
			return false
		}
	}
	switch {
	case t != "" && t[0] == '/':
		return true
	case t == "*":
		return r.Method == http.MethodOptions
	}
	u := r.URL
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Opaque == ""
}

// release reports to a breaker permit if there is one.
func release(permit func(error), result error) {
	if permit != nil {
		permit(result)
	}
}

func bodyTooLargeMessage(p *placement) string {
	return fmt.Sprintf("request body is larger than the %d bytes placement %s accepts", p.maxBodyBytes, p.name)
}

// finish records the exchange in metrics and the access log. It also turns
// a handler panic into a 500 (or, once the response has started, an
// aborted connection) so that one bad request never stops the router.
func (rt *Router) finish(w http.ResponseWriter, r *http.Request, ex *exchange) {
	if v := recover(); v != nil {
		if v != http.ErrAbortHandler {
			rt.events.Error("handler_panic", "request_id", ex.requestID, "panic", fmt.Sprint(v))
		}
		if v != http.ErrAbortHandler && !ex.wroteHeader {
			rt.fail(w, ex, http.StatusInternalServerError, codeInternalError, "internal error")
		} else {
			rt.record(r, ex)
			panic(http.ErrAbortHandler) // net/http closes the connection quietly
		}
	}
	rt.record(r, ex)
}

func (rt *Router) record(r *http.Request, ex *exchange) {
	end := time.Now()
	pm := rt.metrics.unrouted
	if p := ex.labelPlacement(); p != nil {
		pm = p.metrics
		pm.duration.Observe(end.Sub(ex.start).Seconds())
	}
	pm.request(ex.reason, ex.routed, ex.status)
	if rt.access != nil {
		rt.access.write(ex, r.Method, loggedPath(r), end)
	}
}

// loggedPath is the path as the client sent it (and the upstream got it),
// without the query: decoding would log /a%2Fb and /a/b as one path.
func loggedPath(r *http.Request) string {
	if t := r.RequestURI; t != "" && t[0] == '/' {
		if q := strings.IndexByte(t, '?'); q >= 0 {
			return t[:q]
		}
		return t
	}
	return r.URL.EscapedPath()
}

// idleReader reads an upstream response body under the response body idle
// timeout (response_body_idle_ms): no read may wait longer for the next
// bytes. The own client's bodies use the connection's read deadline; an
// http.Transport body, whose connection is out of reach, is closed by a
// timer reset around every read.
type idleReader struct {
	body  io.ReadCloser
	idle  time.Duration
	owned deadlineBody // the tuned pool's bodies
	t     *bodyTimer   // the Transport case only, so the reader stays on the stack
}

type bodyTimer struct {
	timer *time.Timer
	fired atomic.Bool
}

func newIdleReader(body io.ReadCloser, idle time.Duration) idleReader {
	r := idleReader{body: body, idle: idle}
	r.owned, _ = body.(deadlineBody)
	return r
}

func (r *idleReader) read(p []byte) (int, error) {
	if r.idle <= 0 {
		return r.body.Read(p)
	}
	if r.owned != nil {
		return r.owned.readWithin(p, r.idle)
	}
	if r.t == nil {
		t, body := &bodyTimer{}, r.body
		t.timer = time.AfterFunc(r.idle, func() {
			t.fired.Store(true)
			body.Close()
		})
		r.t = t
	} else {
		r.t.timer.Reset(r.idle)
	}
	n, err := r.body.Read(p)
	r.t.timer.Stop()
	return n, err
}

// timedOut reports whether err ended the body on the idle timeout.
func (r *idleReader) timedOut(err error) bool {
	return (r.t != nil && r.t.fired.Load()) || errors.Is(err, os.ErrDeadlineExceeded)
}

func (r *idleReader) stop() {
	if r.t != nil {
		r.t.timer.Stop()
	}
}

// copyBufferPool holds the buffers response bodies are copied through.
var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// respond streams an upstream response to the client. Bodies of unknown
// length (chunked, or ended by close) are flushed after every read so that
// streamed responses reach the client as they arrive; bodies with a length
// are left to the server's buffering.
func (rt *Router) respond(w http.ResponseWriter, ex *exchange, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	copyEndToEnd(h, resp.Header)
	ex.setHeaders(h)
	ex.status = resp.StatusCode
	ex.wroteHeader = true
	w.WriteHeader(resp.StatusCode)

	flusher, _ := w.(http.Flusher)
	streaming := resp.ContentLength < 0 && flusher != nil
	bufp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bufp)
	buf := *bufp
	body := newIdleReader(resp.Body, ex.serving.bodyIdle)
	defer body.stop()
	for {
		n, rerr := body.read(buf)
		if n > 0 {
			written, werr := w.Write(buf[:n])
			ex.bytesOut += int64(written)
			if werr != nil {
				ex.errCode = codeClientClosed
				return
			}
			if streaming {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The upstream broke or stalled mid-body. The status is
			// already sent, so the only honest signal left is an aborted
			// response: the connection closes before the body's end (no
			// last chunk, or fewer bytes than Content-Length).
			ex.errCode = codeUpstreamError
			if body.timedOut(rerr) {
				ex.errCode = codeUpstreamTimeout
			}
			panic(http.ErrAbortHandler)
		}
	}
	for name, values := range resp.Trailer {
		h[http.TrailerPrefix+name] = values
	}
	// A response of known length is complete now: send it before metrics
	// and the access log run, so that they stay off the client's wait.
	// A chunked one keeps its last chunk until the handler returns.
	if resp.ContentLength >= 0 && flusher != nil {
		flusher.Flush()
	}
}
