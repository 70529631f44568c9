package main

import (
	"context"
	"net"
	"net/http"

	"cellbench/go-router/proxy"
	"cellbench/go-router/rawconn"
	"cellbench/go-router/server"
)

// proxyServer serves the proxy listener. Each engine has its own; the
// upstream side of the engine is proxy.Options.Engine.
type proxyServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newProxyServer returns the engine's server for base, which carries what
// both engines share: the handler, the head limit and the timeouts.
func newProxyServer(engine proxy.Engine, base *http.Server) proxyServer {
	if engine == proxy.EngineStdlib {
		return base
	}
	return tunedServer{server.New(base)}
}

// tunedServer is go-router/server's fast path in front of base, on
// rawconn sockets.
type tunedServer struct{ *server.Server }

func (s tunedServer) Serve(ln net.Listener) error {
	return s.Server.Serve(rawconn.Listener{Listener: ln})
}
