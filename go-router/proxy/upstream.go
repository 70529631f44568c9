package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"time"

	"cellbench/config"
	"cellbench/go-router/rawconn"
	"cellbench/go-router/routing"
)

// Connection pool sizing for one upstream. The benchmark drives many
// concurrent requests at one cell, and every idle connection closed for
// lack of room turns into a new connect under load, so the per-host idle
// pool is as large as a realistic concurrency.
const (
	maxIdleConnsPerUpstream = 1024
	idleConnTimeout         = 90 * time.Second
	// maxResponseHeaderBytes bounds what a response head may occupy.
	maxResponseHeaderBytes = 1 << 20
)

// upstream is the connection pool to one placement endpoint. It is
// replaced when the endpoint or a timeout changes and kept otherwise.
type upstream struct {
	endpoint string
	host     string // host:port for request URLs
	connect  time.Duration
	header   time.Duration
	// pool serves requests without a body; transport those with one.
	// transport is used directly, not through http.Client: the proxy wants
	// redirects and cookies passed through untouched.
	pool      *connPool
	transport *http.Transport
}

func newUpstream(p *config.Placement) *upstream {
	u, _ := url.Parse(p.Endpoint) // validated by config.Parse
	dialer := &rawconn.Dialer{Dialer: net.Dialer{Timeout: p.ConnectTimeout(), KeepAlive: 30 * time.Second}}
	return &upstream{
		endpoint: p.Endpoint,
		host:     u.Host,
		connect:  p.ConnectTimeout(),
		header:   p.ResponseHeaderTimeout(),
		pool:     newConnPool(u.Host, p.ConnectTimeout(), p.ResponseHeaderTimeout()),
		transport: &http.Transport{
			DialContext:            dialer.DialContext,
			MaxIdleConns:           0, // no global cap: the per-host cap bounds it
			MaxIdleConnsPerHost:    maxIdleConnsPerUpstream,
			IdleConnTimeout:        idleConnTimeout,
			ResponseHeaderTimeout:  p.ResponseHeaderTimeout(),
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
			// Bodies pass through as they are: no transparent gzip.
			DisableCompression: true,
			// 100-continue is the client's business with the upstream; the
			// transport must not wait on its own.
			ExpectContinueTimeout: 0,
		},
	}
}

// sameAs reports whether this pool still fits placement p.
func (u *upstream) sameAs(p *config.Placement) bool {
	return u.endpoint == p.Endpoint && u.connect == p.ConnectTimeout() && u.header == p.ResponseHeaderTimeout()
}

// close retires the upstream once no snapshot refers to it: idle
// connections close now, busy ones when their request ends.
func (u *upstream) close() {
	u.pool.retire()
	u.transport.CloseIdleConnections()
}

// roundTrip sends one attempt: bodiless requests over the router's own
// pool, the rest through http.Transport. The 1xx responses that precede
// the final one go to the client w, except 100 Continue, which the server
// sends by itself when the body is read.
func (u *upstream) roundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	if req.Body == nil && req.Header["Expect"] == nil {
		return u.pool.roundTrip(req, w)
	}
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		if code != http.StatusContinue {
			forwardInterim(w, code, http.Header(header))
		}
		return nil
	}}
	return u.transport.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

// classify maps a round-trip error onto an attempt outcome. clientGone is
// true when the client's own context ended the attempt: that is neither the
// upstream's fault nor worth an answer.
func classify(ctx context.Context, err error) (outcome routing.Outcome, clientGone bool) {
	if ctx.Err() != nil {
		return routing.OutcomeBroken, true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return routing.OutcomeConnectFailure, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return routing.OutcomeTimeout, false
	}
	return routing.OutcomeBroken, false
}
