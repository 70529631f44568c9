// Package guard protects go-router's client side (contract section 5,
// "Client connections"): a whole-head timeout, a keep-alive idle timeout, a
// request-body idle timeout, and a cap on client connections below the
// descriptor limit. At the cap the connections that are waiting for a head
// (new, idle, or a head still arriving) are shed oldest first, so clients
// with requests under way keep their connections and new ones get in; and
// no faster than the shed rate, so an attack that redials every shed
// connection at once cannot spend the router's CPU on the churn.
//
// It works at the listener and through http.Server's own settings and
// hooks (Protect), so it applies to a plain net/http.Server and to the fast
// path of go-router/server alike, which uses the same http.Server's
// Handler, ConnContext and timeouts.
package guard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Defaults (contract section 5; why these values is written there).
const (
	DefaultHeadTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultBodyIdleTimeout = 30 * time.Second
	DefaultShedRate        = 2000 // connections closed at the cap per second
	// DescriptorReserve is kept back from RLIMIT_NOFILE for listeners, the
	// config file, logs, health probes and accepts in flight.
	DescriptorReserve = 64
)

// Options are the client-side settings of one listener. Zero timeouts
// mean none; MaxConns 0 means DefaultMaxConns(); ShedRate 0 means no
// limit.
type Options struct {
	HeadTimeout     time.Duration
	IdleTimeout     time.Duration
	BodyIdleTimeout time.Duration
	MaxConns        int
	// ShedRate bounds the connections closed at the cap (shed or refused),
	// per second.
	ShedRate float64
}

// DefaultMaxConns derives the client connection cap from the descriptor
// limit: every client connection may need an upstream one beside it (as
// nginx counts worker_connections on both sides), so half of what is left
// after DescriptorReserve.
func DefaultMaxConns() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return MaxConnsFor(lim.Cur)
}

// MaxConnsFor is DefaultMaxConns for a given soft descriptor limit.
func MaxConnsFor(nofile uint64) int {
	const ceiling = 1 << 20
	if nofile > 2*ceiling+DescriptorReserve {
		return ceiling
	}
	if nofile <= DescriptorReserve+2 {
		return 1
	}
	return int((nofile - DescriptorReserve) / 2)
}

// Registry counts the client connections of one listener and sheds the
// oldest waiting ones at the cap.
type Registry struct {
	opts Options
	max  int
	// batch is how many waiting connections one newcomer at the cap sheds
	// (1/64 of the cap: the scan for the oldest stays O(1) per accept).
	batch int
	// shedPace spends ShedRate a batch at a time. While it waits, the
	// accept loop holds the newcomer and the next ones wait in the
	// listen backlog, as with HAProxy's "rate-limit sessions".
	shedPace *rate.Limiter

	mu    sync.Mutex
	conns map[*Conn]struct{}

	shed    atomic.Int64 // waiting connections closed to make room
	refused atomic.Int64 // new connections closed because none was waiting
}

// NewRegistry returns a registry with o's settings (MaxConns resolved).
func NewRegistry(o Options) *Registry {
	maxConns := o.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns()
	}
	batch := max(1, maxConns/64)
	limit := rate.Inf
	if o.ShedRate > 0 {
		limit = rate.Limit(o.ShedRate)
	}
	return &Registry{opts: o, max: maxConns, batch: batch, shedPace: rate.NewLimiter(limit, batch), conns: make(map[*Conn]struct{})}
}

// MaxConns is the resolved cap.
func (r *Registry) MaxConns() int { return r.max }

// Stats returns the open connections and the shed and refused counts.
func (r *Registry) Stats() (open int, shed, refused int64) {
	r.mu.Lock()
	open = len(r.conns)
	r.mu.Unlock()
	return open, r.shed.Load(), r.refused.Load()
}

// Protect applies the timeouts to srv and wraps its Handler and
// ConnContext so that a connection counts as busy (not sheddable) while a
// request of it is being handled. Call it before srv serves, and serve
// srv (or a go-router/server.Server built on it) on r.Listener(ln).
func (r *Registry) Protect(srv *http.Server) {
	// net/http's ReadHeaderTimeout runs from the start of a head (for the
	// first request: from the accept), so it bounds the whole head, unlike
	// a per-read timeout that a byte every few seconds keeps alive.
	srv.ReadHeaderTimeout = r.opts.HeadTimeout
	srv.IdleTimeout = r.opts.IdleTimeout
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, _ := req.Context().Value(connKey{}).(*Conn)
		if c != nil {
			c.busy.Store(true)
			defer c.markWaiting()
		}
		if d := r.opts.BodyIdleTimeout; d > 0 && req.Body != nil && req.Body != http.NoBody {
			req.Body = &idleBody{ReadCloser: req.Body, rc: http.NewResponseController(w), idle: d}
		}
		inner.ServeHTTP(w, req)
	})
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, nc)
		}
		if c := Unwrap(nc); c != nil {
			ctx = context.WithValue(ctx, connKey{}, c)
		}
		return ctx
	}
}

type connKey struct{}

// Unwrap finds the guarded connection under nc (through wrappers that
// offer NetConn, as crypto/tls and go-router/server's handed-over
// connections do).
func Unwrap(nc net.Conn) *Conn {
	for range 8 {
		switch v := nc.(type) {
		case *Conn:
			return v
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Listener returns ln with every accepted connection registered.
func (r *Registry) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, r: r}
}

type listener struct {
	net.Listener
	r *Registry
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &Conn{Conn: nc, r: l.r}
		c.since.Store(time.Now().UnixNano())
		if l.r.admit(c) {
			return c, nil
		}
		// Every connection has a request under way: the newcomer is the
		// one to go (Envoy's max_connections does the same).
		l.r.refused.Add(1)
		nc.Close()
	}
}

// admit registers c, first shedding waiting connections if the cap is
// reached; false if there was nothing to shed. At the cap it waits for the
// shed pace before it decides: the batch's budget is spent whether it sheds
// or refuses, so the pace bounds both.
func (r *Registry) admit(c *Conn) bool {
	r.mu.Lock()
	full := len(r.conns) >= r.max
	r.mu.Unlock()
	if full {
		// Cannot fail: the limiter's burst is the batch, and no deadline.
		_ = r.shedPace.WaitN(context.Background(), r.batch)
	}
	r.mu.Lock()
	var victims []*Conn
	if len(r.conns) >= r.max {
		victims = r.oldestWaitingLocked(r.batch)
		if len(victims) == 0 {
			r.mu.Unlock()
			return false
		}
		for _, v := range victims {
			delete(r.conns, v)
		}
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	for _, v := range victims {
		r.shed.Add(1)
		v.closeSocket()
	}
	return true
}

// oldestWaitingLocked returns up to n waiting connections, oldest first.
func (r *Registry) oldestWaitingLocked(n int) []*Conn {
	type cand struct {
		c     *Conn
		since int64
	}
	var waiting []cand
	for c := range r.conns {
		if !c.busy.Load() {
			waiting = append(waiting, cand{c, c.since.Load()})
		}
	}
	slices.SortFunc(waiting, func(a, b cand) int {
		switch {
		case a.since < b.since:
			return -1
		case a.since > b.since:
			return 1
		}
		return 0
	})
	out := make([]*Conn, 0, min(n, len(waiting)))
	for _, w := range waiting[:min(n, len(waiting))] {
		out = append(out, w.c)
	}
	return out
}

func (r *Registry) remove(c *Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// Conn is a registered client connection.
type Conn struct {
	net.Conn
	r *Registry
	// busy: a request of this connection is being handled. since: when it
	// last started waiting for a head (accept, or end of a response).
	busy  atomic.Bool
	since atomic.Int64
	once  sync.Once
	// headCut: a read waiting for a head failed on its deadline (the head
	// or the idle timeout), and nothing has been read since. cutDeadline:
	// the read deadline is a cut in the distant past (net/http and
	// go-router/server abort a pending read so), not a timeout.
	headCut     atomic.Bool
	cutDeadline atomic.Bool
}

// distantPast separates a deadline set to cut a read short from a timeout.
var distantPast = time.Unix(1<<30, 0)

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.cutDeadline.Store(!t.IsZero() && t.Before(distantPast))
	return c.Conn.SetReadDeadline(t)
}

func (c *Conn) SetDeadline(t time.Time) error {
	c.cutDeadline.Store(!t.IsZero() && t.Before(distantPast))
	return c.Conn.SetDeadline(t)
}

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	switch {
	case n > 0:
		if c.headCut.Load() {
			c.headCut.Store(false)
		}
	case err != nil && !c.busy.Load() && !c.cutDeadline.Load() && errors.Is(err, os.ErrDeadlineExceeded):
		c.headCut.Store(true)
	}
	return n, err
}

// Write refuses what net/http.Server writes once its header timeout has
// cut a head: bufio hands it the partial line it holds as a whole one, so
// it answers 400 ("malformed MIME header line") where the contract closes
// without an answer, as it does itself when the cut falls between lines.
func (c *Conn) Write(p []byte) (int, error) {
	if c.headCut.Load() && !c.busy.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Write(p)
}

func (c *Conn) markWaiting() {
	c.since.Store(time.Now().UnixNano())
	c.busy.Store(false)
}

// Close unregisters the connection and closes it.
func (c *Conn) Close() error {
	c.r.remove(c)
	return c.closeSocket()
}

func (c *Conn) closeSocket() error {
	err := net.ErrClosed
	c.once.Do(func() { err = c.Conn.Close() })
	return err
}

// CloseWrite half-closes as a *net.TCPConn does (net/http uses it).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn is the connection under the guard.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// idleBody bounds the wait for each piece of a request body: a client that
// stops sending mid-body for BodyIdleTimeout gets its read failed with a
// deadline error (the router answers 408 request_timeout).
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	armed := b.rc.SetReadDeadline(time.Now().Add(b.idle)) == nil
	n, err := b.ReadCloser.Read(p)
	if err != nil && armed {
		b.done = true
		// net/http reads the connection in the background once the body
		// is done; a deadline left behind would cancel the request.
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// IsBodyTimeout reports whether err is a request-body idle timeout.
func IsBodyTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
