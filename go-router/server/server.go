// Package server runs go-router's client side of HTTP/1.1: net/http.Server
// with a fast path in front of it for the plain requests that make up most
// edge traffic.
//
// Why: measured on loopback with one request in flight, net/http.Server
// alone costs about 26 µs of CPU per request over a connection loop that
// uses the same net/http parsers (a background-read goroutine per request,
// a cancel context, deadline juggling, a cloned header map, chunkWriter);
// go-router/README.md has the numbers. That was the larger part of what the
// router added over nginx.
//
// How: every connection starts on the fast path's own loop. A request head
// that is complete in the buffer, strictly CRLF-framed, HTTP/1.1, without a
// body (no Content-Length, Transfer-Encoding or Expect), without Upgrade,
// with exactly one valid Host and an origin-form target is parsed by
// parseHead (head.go, checked against http.ReadRequest) and served here. Anything else, including every malformed
// request, hands the connection (with what was buffered) to net/http.Server,
// which owns it from then on. So the wire rules for the unusual cases stay
// net/http's, and the fast path only has to be right for the plain case.
package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves one listener with the fast path and Fallback behind it.
type Server struct {
	fallback *http.Server
	handler  http.Handler

	mu       sync.Mutex
	conns    map[*conn]struct{}
	listener net.Listener
	handoff  *handoffListener
	shutting atomic.Bool
}

// New returns a Server that serves with fallback's Handler and timeouts
// (ReadHeaderTimeout, IdleTimeout) and hands unusual connections to it.
func New(fallback *http.Server) *Server {
	return &Server{fallback: fallback, handler: fallback.Handler, conns: make(map[*conn]struct{})}
}

// Serve accepts connections until the listener fails or Shutdown/Close is
// called; it then returns http.ErrServerClosed, as net/http does.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.listener = ln
	s.handoff = newHandoffListener(ln.Addr())
	s.mu.Unlock()
	go s.fallback.Serve(s.handoff) // its error is Shutdown's or Close's

	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			// Retry what may pass (EMFILE and the like) as net/http does.
			var ne net.Error
			//lint:ignore SA1019 net/http.Server.Serve retries on the same criterion
			if errors.As(err, &ne) && ne.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, rwc)
		if !s.track(c) {
			rwc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handOver gives a connection to net/http.Server; false once it is shut.
func (s *Server) handOver(rwc net.Conn) bool {
	return s.handoff.push(rwc)
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones to finish their request, like http.Server.Shutdown, for both paths.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	ln := s.listener
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- s.fallback.Shutdown(ctx) }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			<-fallbackDone
			return ctx.Err()
		case <-tick.C:
		}
	}
	return <-fallbackDone
}

// closeIdle closes the fast path's idle connections and reports whether
// none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	return len(s.conns) == 0
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	if s.listener != nil {
		s.listener.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	return s.fallback.Close()
}

// handoffListener is the listener net/http.Server serves: it yields the
// connections the fast path hands over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
