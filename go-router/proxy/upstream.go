package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"cellbench/config"
	"cellbench/go-router/routing"
)

// upstream is one placement endpoint and the engine's client for it. It is
// replaced when the endpoint or a timeout changes and kept otherwise.
type upstream struct {
	endpoint string
	host     string // host:port for request URLs
	connect  time.Duration
	header   time.Duration
	client   upstreamClient
}

func newUpstream(p *config.Placement, engine Engine) *upstream {
	u, _ := url.Parse(p.Endpoint) // validated by config.Parse
	return &upstream{
		endpoint: p.Endpoint,
		host:     u.Host,
		connect:  p.ConnectTimeout(),
		header:   p.ResponseHeaderTimeout(),
		client:   newUpstreamClient(engine, u.Host, p.ConnectTimeout(), p.ResponseHeaderTimeout()),
	}
}

// sameAs reports whether this upstream still fits placement p.
func (u *upstream) sameAs(p *config.Placement) bool {
	return u.endpoint == p.Endpoint && u.connect == p.ConnectTimeout() && u.header == p.ResponseHeaderTimeout()
}

// close retires the upstream once no snapshot refers to it: idle
// connections close now. Busy ones finish their request; the tuned pool
// then closes them, http.Transport keeps them idle until IdleConnTimeout.
func (u *upstream) close() { u.client.retire() }

// roundTrip sends one attempt (upstreamClient.roundTrip).
func (u *upstream) roundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	return u.client.roundTrip(req, w)
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
