package upstream

import (
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"time"

	"cellbench/go-router/engine"
)

// client sends attempts to one placement endpoint. It is where the two
// engines differ on the upstream side: stdlibClient is http.Transport
// alone, tunedClient puts go-router's own client for bodiless requests in
// front of one.
type client interface {
	// roundTrip sends one attempt and returns the final response. The 1xx
	// responses before it go to the client w, except 100 Continue, which
	// the server sends by itself when the body is read.
	roundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error)
	// retire is called once no snapshot uses the client: idle connections
	// close now.
	retire()
}

// deadlineBody is a response body on a connection its client owns (the
// tuned pool's), so that a read can be bounded by the connection's read
// deadline; other bodies are bounded by a timer (BodyReader, body.go).
type deadlineBody interface {
	readWithin(p []byte, idle time.Duration) (int, error)
}

func newClient(e engine.Engine, host string, connect, header time.Duration) client {
	if e == engine.Stdlib {
		return newStdlibClient(connect, header)
	}
	return newTunedClient(host, connect, header)
}

// Connection pool sizing for one upstream, both engines. The benchmark
// drives many concurrent requests at one cell, and every idle connection
// closed for lack of room turns into a new connect under load, so the
// per-host idle pool is as large as a realistic concurrency.
const (
	maxIdleConnsPerUpstream = 1024
	idleConnTimeout         = 90 * time.Second
	// MaxResponseHeaderBytes bounds what a response head may occupy.
	MaxResponseHeaderBytes = 1 << 20
	tcpKeepAlive           = 30 * time.Second
)

// newTransport is the http.Transport of one placement; the contract's
// connect timeout is the dialer's, its response-header timeout the
// Transport's ResponseHeaderTimeout. It is used directly, not through
// http.Client: the proxy wants redirects and cookies passed through
// untouched.
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), header time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:            dial,
		Proxy:                  nil, // never an HTTP_PROXY from the environment
		MaxIdleConns:           0,   // no global cap: the per-host cap bounds it
		MaxIdleConnsPerHost:    maxIdleConnsPerUpstream,
		IdleConnTimeout:        idleConnTimeout,
		ResponseHeaderTimeout:  header,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		// Bodies pass through as they are: no transparent gzip.
		DisableCompression: true,
		// 100-continue is the client's business with the upstream; the
		// transport must not wait on its own.
		ExpectContinueTimeout: 0,
	}
}

// transportRoundTrip sends req through t, passing 1xx responses on to w.
func transportRoundTrip(t *http.Transport, req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		if code != http.StatusContinue {
			forwardInterim(w, code, http.Header(header))
		}
		return nil
	}}
	out := req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	// The Transport writes URL.RequestURI(), which percent-encodes what
	// net/http.Server lets through as it is (|, {, ", ^, a backslash): the
	// cell would see another path than the client sent, and than the tuned
	// pool sends. An Opaque URL is sent verbatim (net/url documents it for
	// this); a path starting with // would read as an authority there, and
	// keeps the Transport's form.
	if target := req.RequestURI; len(target) > 1 && target[0] == '/' && target[1] != '/' {
		path, _, _ := strings.Cut(target, "?")
		u := *out.URL
		u.Opaque = path
		out.URL = &u
	}
	return t.RoundTrip(out)
}
