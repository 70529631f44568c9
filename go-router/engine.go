package main

import (
	"context"
	"net"
	"net/http"

	"cellbench/go-router/engine"
	"cellbench/go-router/rawconn"
	"cellbench/go-router/server"
)

// The client side of an engine is its sockets (engineListener) and the
// server that reads them (newProxyServer); the upstream side is
// proxy.Options.Engine (go-router/upstream).

// proxyServer serves the proxy listener.
type proxyServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// engineListener returns ln yielding the engine's sockets: the net
// package's for stdlib, rawconn's for tuned. The guard goes around it, so
// that it sees the connection the server reads.
func engineListener(e engine.Engine, ln net.Listener) net.Listener {
	if e == engine.Stdlib {
		return ln
	}
	return rawconn.Listener{Listener: ln}
}

// newProxyServer returns the engine's server for base, which carries what
// both engines share: the handler, the head limit and the timeouts.
func newProxyServer(e engine.Engine, base *http.Server) proxyServer {
	if e == engine.Stdlib {
		return base
	}
	return server.New(base)
}
