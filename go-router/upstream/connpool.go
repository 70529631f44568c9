package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"cellbench/go-router/h1"
	"cellbench/go-router/rawconn"
	"cellbench/go-router/routing"
	"cellbench/go-router/tunedpath"
)

// connPool is go-router's own HTTP/1.1 client for requests without a body,
// the bulk of edge traffic. http.Transport runs every connection on two
// goroutines of its own (readLoop, writeLoop), so one round trip costs
// several goroutine hand-offs plus a read that only re-arms the poller
// after each response; measured on loopback that was most of what the
// router added over nginx. Here the handler's goroutine writes the request
// and reads the response on a pooled connection itself. Requests with a
// body keep using http.Transport, whose concurrent body writing handles an
// upstream that answers before it has read the body.
//
// Plain responses are parsed by readPlainResponse, the rest by net/http's
// own http.ReadResponse; the request head is written by writeRequestHead.
type connPool struct {
	host          string
	dialer        *rawconn.Dialer
	headerTimeout time.Duration

	mu      sync.Mutex
	idle    []*poolConn // most recently used last
	retired bool        // no longer in a snapshot: connections are not kept
}

type poolConn struct {
	conn net.Conn
	// limit caps what a response head may read from conn; it is lifted
	// once the head is in so that bodies stream without bound.
	limit     io.LimitedReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// errStaleConn marks a pooled connection the upstream had closed while it
// sat idle; the request is sent again on a fresh one.
var errStaleConn = errors.New("pooled upstream connection was closed")

func newConnPool(host string, connect, header time.Duration) *connPool {
	return &connPool{host: host, dialer: &rawconn.Dialer{Dialer: net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}}, headerTimeout: header}
}

// roundTrip sends a request without a body and returns the response head;
// the body reads from the connection, which goes back to the pool at EOF.
func (p *connPool) roundTrip(req *http.Request, interim http.ResponseWriter) (*http.Response, error) {
	tunedpath.Mark(tunedpath.UpstreamClient)
	ctx := req.Context()
	pc, reused, err := p.get(ctx, true)
	if err != nil {
		return nil, err
	}
	resp, err := p.exchange(ctx, pc, req, interim)
	if err == nil {
		return resp, nil
	}
	pc.conn.Close()
	// A connection that failed before any answer after sitting idle is
	// most likely one the upstream closed meanwhile: send the request once
	// more on a fresh connection, as http.Transport does, when it may be
	// sent twice. The idle stack is LIFO, so every connection left in it
	// has idled longer than this one: they are dropped too.
	if !reused || !errors.Is(err, errStaleConn) || !routing.IsIdempotent(req.Method) || ctx.Err() != nil {
		return nil, err
	}
	p.closeIdle()
	if pc, _, err = p.get(ctx, false); err != nil {
		return nil, err
	}
	resp, err = p.exchange(ctx, pc, req, interim)
	if err != nil {
		pc.conn.Close()
	}
	return resp, err
}

func (p *connPool) exchange(ctx context.Context, pc *poolConn, req *http.Request, interim http.ResponseWriter) (*http.Response, error) {
	if err := writeRequestHead(pc.bw, req); err != nil {
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, staleIfEmpty(err, pc)
	}
	pc.limit.N = MaxResponseHeaderBytes
	defer func() { pc.limit.N = math.MaxInt64 }()
	deadline := time.Now().Add(p.headerTimeout)
	stop, short, err := p.awaitAnswer(ctx, pc, deadline)
	if err != nil {
		return nil, staleIfEmpty(err, pc)
	}
	defer stop()
	for {
		if short && h1.CompleteHead(pc.br) == nil {
			// The head (or a final one after a 1xx) goes on arriving past
			// quickAnswer: the header timeout bounds the rest of it.
			_ = pc.conn.SetReadDeadline(deadline)
			short = false
		}
		resp := readPlainResponse(pc.br, req)
		if resp == nil {
			var err error
			if resp, err = http.ReadResponse(pc.br, req); err != nil {
				return nil, staleIfEmpty(err, pc)
			}
		}
		// Interim responses (103 Early Hints) go to the client interim (if
		// any); the final response follows on the same connection. 101 is final: Upgrade
		// is never forwarded, so it only comes from a broken upstream.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if interim != nil && resp.StatusCode != http.StatusContinue {
				forwardInterim(interim, resp.StatusCode, resp.Header)
			}
			continue
		}
		if !stop() {
			return nil, ctx.Err()
		}
		_ = pc.conn.SetReadDeadline(time.Time{})
		resp.Body = &pooledBody{body: resp.Body, pool: p, pc: pc, reusable: !resp.Close}
		return resp, nil
	}
}

// quickAnswer is how long the pool waits for the first byte of an answer
// before it watches the client too. Registering a cut with
// context.AfterFunc on every request was ~3 % of the router's CPU, and most
// answers arrive well within this; a client that leaves during it is
// noticed when it ends.
const quickAnswer = 10 * time.Millisecond

// awaitAnswer waits for the first byte of the answer until deadline, the
// response-header timeout. Past quickAnswer, a client that leaves cuts the
// wait short; stop ends that watch and reports false if it already fired.
// short reports that the first byte came within quickAnswer and the read
// deadline is still quickAnswer's: the caller moves it to deadline when the
// rest of the head has to be waited for.
func (p *connPool) awaitAnswer(ctx context.Context, pc *poolConn, deadline time.Time) (stop func() bool, short bool, err error) {
	noWatch := func() bool { return true }
	if p.headerTimeout <= quickAnswer {
		_ = pc.conn.SetReadDeadline(deadline)
		return noWatch, false, nil // the header timeout comes first anyway
	}
	_ = pc.conn.SetReadDeadline(deadline.Add(quickAnswer - p.headerTimeout)) // quickAnswer after sending
	_, err = pc.br.Peek(1)
	if err == nil {
		return noWatch, true, nil
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // as http.ReadResponse reports it
		}
		return nil, false, err
	}
	// The full deadline goes first: a cut that fires at once (the client
	// already left) must not be overwritten by it.
	_ = pc.conn.SetReadDeadline(deadline)
	return context.AfterFunc(ctx, func() { _ = pc.conn.SetReadDeadline(aLongTimeAgo) }), false, nil
}

// staleIfEmpty marks an error as errStaleConn when nothing at all came
// back on the connection.
func staleIfEmpty(err error, pc *poolConn) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	if pc.br.Buffered() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)) {
		return errors.Join(errStaleConn, err)
	}
	return err
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op != "dial"
}

var aLongTimeAgo = time.Unix(1, 0)

// get returns an idle connection (if idleOK) or dials a new one.
func (p *connPool) get(ctx context.Context, idleOK bool) (pc *poolConn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for n := len(p.idle); idleOK && n > 0; n = len(p.idle) {
		pc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(pc.idleSince) < idleConnTimeout {
			p.mu.Unlock()
			return pc, true, nil
		}
		pc.conn.Close()
	}
	p.mu.Unlock()
	conn, err := p.dialer.DialContext(ctx, "tcp", p.host)
	if err != nil {
		return nil, false, err
	}
	pc = &poolConn{conn: conn, limit: io.LimitedReader{R: conn, N: math.MaxInt64}, bw: bufio.NewWriterSize(conn, 4096)}
	pc.br = bufio.NewReaderSize(&pc.limit, 4096)
	return pc, false, nil
}

// put returns a connection whose response was read to the end. It also
// retires the oldest idle connection once it has idled too long: the
// stack is used from the top, so without this a burst's connections would
// sit at the bottom until the upstream closed them.
func (p *connPool) put(pc *poolConn) {
	now := time.Now()
	pc.idleSince = now
	var expired *poolConn
	p.mu.Lock()
	if len(p.idle) > 0 && now.Sub(p.idle[0].idleSince) >= idleConnTimeout {
		expired = p.idle[0]
		p.idle[0] = nil
		p.idle = p.idle[1:]
	}
	if !p.retired && len(p.idle) < maxIdleConnsPerUpstream {
		p.idle = append(p.idle, pc)
		pc = nil
	}
	p.mu.Unlock()
	if expired != nil {
		expired.conn.Close()
	}
	if pc != nil {
		pc.conn.Close()
	}
}

// retire closes the idle connections of a pool no snapshot uses any more;
// connections of requests still in flight are closed when they finish.
func (p *connPool) retire() {
	p.mu.Lock()
	p.retired = true
	p.mu.Unlock()
	p.closeIdle()
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

// pooledBody hands its connection back to the pool once the body has been
// read to its end; closed early, it closes the connection instead of
// reading the rest (net/http's response body would drain it).
type pooledBody struct {
	body     io.ReadCloser
	pool     *connPool
	pc       *poolConn
	reusable bool
	armed    bool // a read deadline of readWithin is set on pc
}

// readWithin is Read bounded by the response body idle timeout: the
// connection's read deadline, set only when the read has to wait for the
// socket (a small body is usually buffered whole with the head).
func (b *pooledBody) readWithin(p []byte, idle time.Duration) (int, error) {
	if b.pc != nil && b.pc.br.Buffered() == 0 {
		_ = b.pc.conn.SetReadDeadline(time.Now().Add(idle))
		b.armed = true
	}
	return b.Read(p)
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		pc := b.pc
		b.pc = nil
		if b.reusable && pc.br.Buffered() == 0 {
			if b.armed {
				_ = pc.conn.SetReadDeadline(time.Time{})
			}
			b.pool.put(pc)
		} else {
			pc.conn.Close()
		}
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if b.pc != nil {
		b.pc.conn.Close()
		b.pc = nil
	}
	return nil
}
