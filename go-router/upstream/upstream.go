// Package upstream is go-router's client side toward the cells, the twin
// of go-router/server: one Upstream per placement endpoint, on the
// engine's client (http.Transport alone, or the own pool for bodiless
// requests in front of one), the classification of a failed round trip,
// and the reading of a response body under the body idle timeout.
package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"cellbench/config"
	"cellbench/go-router/engine"
	"cellbench/go-router/routing"
)

// Upstream is one placement endpoint and the engine's client for it. It is
// replaced when the endpoint or a timeout changes and kept otherwise.
type Upstream struct {
	endpoint string
	// Host is host:port for request URLs.
	Host    string
	connect time.Duration
	header  time.Duration
	client  client
}

// New makes the upstream of placement p on engine e.
func New(p *config.Placement, e engine.Engine) *Upstream {
	u, _ := url.Parse(p.Endpoint) // validated by config.Parse
	return &Upstream{
		endpoint: p.Endpoint,
		Host:     u.Host,
		connect:  p.ConnectTimeout(),
		header:   p.ResponseHeaderTimeout(),
		client:   newClient(e, u.Host, p.ConnectTimeout(), p.ResponseHeaderTimeout()),
	}
}

// SameAs reports whether this upstream still fits placement p.
func (u *Upstream) SameAs(p *config.Placement) bool {
	return u.endpoint == p.Endpoint && u.connect == p.ConnectTimeout() && u.header == p.ResponseHeaderTimeout()
}

// Retire is called once no snapshot refers to the upstream: idle
// connections close now. Busy ones finish their request; the tuned pool
// then closes them, http.Transport keeps them idle until IdleConnTimeout.
func (u *Upstream) Retire() { u.client.retire() }

// RoundTrip sends one attempt and returns the final response. The 1xx
// responses before it go to the client w, except 100 Continue, which the
// server sends by itself when the body is read.
func (u *Upstream) RoundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	return u.client.roundTrip(req, w)
}

// Classify maps a round-trip error onto an attempt outcome. clientGone is
// true when the client's own context ended the attempt: that is neither the
// upstream's fault nor worth an answer.
func Classify(ctx context.Context, err error) (outcome routing.Outcome, clientGone bool) {
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
