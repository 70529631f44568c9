package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cellbench/go-router/obs"
	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/go-router/snapshot"
)

// ServeHTTP runs contract section 2 for one request: route, rate limit,
// select an available placement, apply its limits, proxy with retries.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := Exchange{start: time.Now(), snap: rt.store.Current()}
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
		rt.respondError(w, &ex, MethodNotSupported, "CONNECT is not supported by a reverse proxy")
		return
	}
	// RFC 9112 §3.2: origin-form, absolute-form or, for OPTIONS, "*".
	// net/http passes on any target url.ParseRequestURI takes, such as
	// "x:80" (it would go upstream as "GET 80") or "*" with GET.
	if !validTarget(r) {
		rt.respondError(w, &ex, BadTarget, "the request target must be an absolute path or URI")
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
		rt.respondError(w, &ex, MissingRoutingKey, "the X-Routing-Key header is required")
		return
	}
	ex.routingKey = key
	s := ex.snap
	primary, reason := s.Table.Route(key)
	ex.routed, ex.reason, ex.primary = true, reason, s.Placements[primary]

	if lim := ex.primary.Limiter; lim != nil {
		if ok, after := lim.Allow(key, ex.start); !ok {
			ex.primary.Metrics.RateLimited()
			ex.retryAfter = after
			rt.respondError(w, &ex, RateLimited, "rate limit of placement "+ex.primary.Name+" exceeded")
			return
		}
	}

	// permit is the breaker permit of the selected placement, taken while
	// checking its availability. X-Circuit-State reports the state that
	// admitted the request: the attempt's own outcome shows in its status.
	var permit resilience.Permit
	serving, failover, ok := routing.Select(s.Table.Candidates(primary), func(i int) routing.Availability {
		p := s.Placements[i]
		if p.Health.Unhealthy() {
			return routing.Unhealthy
		}
		if p.Breaker == nil {
			ex.circuit, ex.hasCircuit = resilience.Closed, true
			return routing.Available
		}
		admitted, ok := p.Breaker.Admit()
		if !ok {
			return routing.CircuitOpen
		}
		permit = admitted
		ex.circuit, ex.hasCircuit = p.Breaker.State(), true
		return routing.Available
	})
	ex.failover = failover
	if !ok {
		rt.respondError(w, &ex, NoAvailablePlacement, "no placement is available for this routing key")
		return
	}
	p := s.Placements[serving]
	ex.serving = p

	fits := p.Concurrency.Enter(p.ConcurrencyLimit)
	defer p.Concurrency.Leave()
	if !fits {
		permit.Abandon()
		ex.retryAfter = 1
		rt.respondError(w, &ex, ConcurrencyLimited, "concurrency limit of placement "+p.Name+" reached")
		return
	}
	if p.MaxBodyBytes > 0 && r.ContentLength > p.MaxBodyBytes {
		permit.Abandon()
		rt.respondError(w, &ex, BodyTooLarge, bodyTooLargeMessage(p))
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

func bodyTooLargeMessage(p *snapshot.Placement) string {
	return fmt.Sprintf("request body is larger than the %d bytes placement %s accepts", p.MaxBodyBytes, p.Name)
}

// finish records the exchange in metrics and the access log. It also turns
// a handler panic into a 500 (or, once the response has started, an
// aborted connection) so that one bad request never stops the router.
func (rt *Router) finish(w http.ResponseWriter, r *http.Request, ex *Exchange) {
	if v := recover(); v != nil {
		if v != http.ErrAbortHandler {
			rt.events.Error("handler_panic", "request_id", ex.requestID, "panic", fmt.Sprint(v))
		}
		if v != http.ErrAbortHandler && !ex.wroteHeader {
			rt.respondError(w, ex, InternalError, "internal error")
		} else {
			rt.record(r, ex)
			panic(http.ErrAbortHandler) // net/http closes the connection quietly
		}
	}
	rt.record(r, ex)
}

// record counts the exchange and writes its access-log line.
func (rt *Router) record(r *http.Request, ex *Exchange) {
	end := time.Now()
	pm := rt.metrics.Unrouted()
	p := ex.labelPlacement()
	if p != nil {
		pm = p.Metrics
		pm.ObserveDuration(end.Sub(ex.start))
	}
	pm.Request(ex.reason, ex.routed, ex.status)
	if rt.access == nil {
		return
	}
	line := obs.Line{End: end, RequestID: ex.requestID, Method: r.Method, Path: loggedPath(r), RoutingKey: ex.routingKey,
		FailoverReason: ex.failover.String(), Status: ex.status, Attempts: ex.attempts, Error: ex.errCode.String(),
		Duration: end.Sub(ex.start), UpstreamTime: ex.upstream, BytesOut: ex.bytesOut, ConfigVersion: ex.snap.Config.Version}
	if p != nil {
		line.Placement = p.Name
	}
	if ex.routed {
		line.RouteReason = ex.reason.String()
	}
	if ex.attempts > 0 {
		line.Upstream = ex.serving.Endpoint
	}
	rt.access.Write(&line)
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
