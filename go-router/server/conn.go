package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"cellbench/go-router/h1"
	"cellbench/go-router/tunedpath"
)

// headBufferSize bounds the request heads the fast path takes; a longer
// head goes to net/http.Server, which applies MaxHeaderBytes (431). 8 KiB
// keeps heads with large cookies on the fast path; with the 4 KiB write
// buffer a connection holds 12 KiB, where net/http holds 8.
const headBufferSize = 8 << 10

// Connection states, for Shutdown.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

type conn struct {
	s          *Server
	rwc        net.Conn
	remoteAddr string
	state      atomic.Int32

	// in feeds br: bytes the client watch has read first, then rwc.
	in    prefixReader
	br    *bufio.Reader
	bw    *bufio.Writer
	watch clientWatch
	res   response

	// base is the context of every request: fallback's ConnContext (as
	// net/http applies it), so the handler finds its connection's guard.
	base context.Context
	// headDeadline bounds the first head from the accept; zero after it.
	headDeadline time.Time
	// headEnd is the deadline of the head being read when it is handed
	// over; net/http's own header timeout is held to it.
	headEnd time.Time
}

func newConn(s *Server, rwc net.Conn) *conn {
	tunedpath.Mark(tunedpath.ServerLoop)
	c := &conn{s: s, rwc: rwc, remoteAddr: rwc.RemoteAddr().String()}
	c.in.r = rwc
	c.br = bufio.NewReaderSize(&c.in, headBufferSize)
	c.bw = bufio.NewWriterSize(rwc, 4<<10)
	c.watch.c = c
	c.base = context.Background()
	if cc := s.fallback.ConnContext; cc != nil {
		c.base = cc(c.base, rwc)
	}
	if d := s.fallback.ReadHeaderTimeout; d > 0 {
		c.headDeadline = time.Now().Add(d)
	}
	return c
}

func (c *conn) serve() {
	handedOver := false
	defer func() {
		c.state.Store(stateClosed)
		c.s.untrack(c)
		if !handedOver {
			c.rwc.Close()
		}
	}()
	for {
		req, ok := c.readRequest()
		if !ok {
			return
		}
		if req == nil {
			handedOver = c.handOver()
			return
		}
		if !c.serveRequest(req) {
			return
		}
	}
}

// readRequest waits for the next request head. It returns the request if
// the fast path takes it, (nil, true) to hand the connection over, and
// (nil, false) when the connection is done (closed, idle timeout, shutdown).
func (c *conn) readRequest() (*http.Request, bool) {
	c.state.Store(stateIdle)
	if c.s.shutting.Load() {
		return nil, false
	}
	// The first head is bounded from the accept (as net/http does); a later
	// one waits IdleTimeout for its first byte, then ReadHeaderTimeout.
	first := !c.headDeadline.IsZero()
	c.headEnd = time.Time{}
	if first {
		_ = c.rwc.SetReadDeadline(c.headDeadline)
		c.headEnd, c.headDeadline = c.headDeadline, time.Time{}
	} else if d := c.s.fallback.IdleTimeout; d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, false
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return nil, false // closed by Shutdown meanwhile
	}
	head := h1.CompleteHead(c.br)
	if head == nil {
		// The head is arriving in pieces: only now does the header
		// timeout need arming (the common head arrives whole).
		if d := c.s.fallback.ReadHeaderTimeout; d > 0 && !first {
			c.headEnd = time.Now().Add(d)
			_ = c.rwc.SetReadDeadline(c.headEnd)
		}
		for head == nil {
			if c.br.Buffered() == c.br.Size() {
				return nil, true // longer than the fast path takes
			}
			if buf, _ := c.br.Peek(c.br.Buffered()); foreignFirstLine(buf) {
				return nil, true // net/http answers it without the rest
			}
			if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return nil, false // net/http closes on a header timeout too
				}
				return nil, true // net/http answers a cut head as it would
			}
			head = h1.CompleteHead(c.br)
		}
	}
	req := parseHead(head)
	if req == nil {
		return nil, true
	}
	_, _ = c.br.Discard(len(head))
	_ = c.rwc.SetReadDeadline(time.Time{})
	req.RemoteAddr = c.remoteAddr
	return req, true
}

// serveRequest runs the handler for one request and finishes its
// response; false means the connection must close.
func (c *conn) serveRequest(req *http.Request) (keepAlive bool) {
	ctx, cancel := context.WithCancel(c.base)
	defer cancel()
	req = req.WithContext(ctx)
	w := &c.res
	w.reset(c, req)
	c.watch.arm(cancel)

	aborted := c.runHandler(w, req)
	clientGone := c.watch.disarm()
	if aborted {
		return false
	}
	// A client gone by the watch's reckoning may only have half-closed
	// (shutdown(SHUT_WR) after its request): it still gets the response,
	// as from net/http, and the connection ends after it.
	if err := w.finish(); err != nil || clientGone {
		return false
	}
	return !w.closeAfter && !req.Close && !c.s.shutting.Load()
}

// runHandler calls the handler; a panic aborts the response and (unless it
// is http.ErrAbortHandler) is logged as net/http logs it.
func (c *conn) runHandler(w *response, req *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			aborted = true
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("http: panic serving %v: %v\n%s", c.remoteAddr, v, buf)
			}
		}
	}()
	c.s.handler.ServeHTTP(w, req)
	return false
}

// handOver passes the connection, with what br holds, to net/http.Server.
func (c *conn) handOver() bool {
	buffered, _ := c.br.Peek(c.br.Buffered())
	pending := append([]byte(nil), buffered...)
	_ = c.rwc.SetReadDeadline(time.Time{})
	rc := &replayConn{Conn: c.rwc, in: prefixReader{pending: pending, r: c.rwc}}
	if !c.headEnd.IsZero() {
		rc.headEnd.Store(c.headEnd.UnixNano())
	}
	return c.s.handOver(rc)
}

func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.rwc.Close()
	}
}

func (s *Server) logf(format string, args ...any) {
	if l := s.fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// prefixReader reads pending bytes first, then r.
type prefixReader struct {
	pending []byte
	r       io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// replayConn is a connection handed to net/http.Server: its reads return
// the bytes the fast path had buffered before the socket's.
type replayConn struct {
	net.Conn
	in prefixReader
	// headEnd (UnixNano, 0 = none) caps net/http's first read deadline, its
	// header timeout: a head the fast path gave up on keeps the deadline it
	// had, rather than starting a new one at the hand-over.
	headEnd atomic.Int64
}

func (r *replayConn) SetReadDeadline(t time.Time) error {
	if end := r.headEnd.Swap(0); end != 0 {
		if e := time.Unix(0, end); t.IsZero() || t.After(e) {
			t = e
		}
	}
	return r.Conn.SetReadDeadline(t)
}

func (r *replayConn) SetDeadline(t time.Time) error {
	if err := r.SetReadDeadline(t); err != nil {
		return err
	}
	return r.Conn.SetWriteDeadline(t)
}

func (r *replayConn) Read(b []byte) (int, error) { return r.in.Read(b) }

// NetConn is the connection under the replay (go-router/guard finds its
// registered connection through it).
func (r *replayConn) NetConn() net.Conn { return r.Conn }

// CloseWrite lets net/http half-close as it does on a *net.TCPConn.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
