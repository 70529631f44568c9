package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conns is one worker's keep-alive connections, one per address; a worker
// has at most one request in flight, so a connection never carries two.
type conns struct {
	timeout time.Duration
	byAddr  map[string]*conn
	// strings interns the few distinct header values (placements, versions)
	// so that a result does not allocate for them.
	strings map[string]string
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
	// used: at least one response came on this connection, so a failure
	// before any byte of the next may be the server closing an idle
	// keep-alive connection, and the request is retried once on a new one
	// (as net/http's Transport does for idempotent requests).
	used bool
}

func newConns(timeout time.Duration) *conns {
	return &conns{timeout: timeout, byAddr: map[string]*conn{}, strings: map[string]string{}}
}

func (c *conns) close() {
	for addr, k := range c.byAddr {
		k.nc.Close()
		delete(c.byAddr, addr)
	}
}

// do sends req and reads its response into r (Sent, Done, Code or Err and
// the explaining headers).
func (c *conns) do(r *Result, req Request, since func() time.Duration) {
	r.Target = req.Target
	r.Sent = since()
	for attempt := 0; ; attempt++ {
		k, err := c.get(req.Addr)
		if err != nil {
			r.Done, r.Err = since(), errorClass(err)
			return
		}
		deadline := time.Now().Add(c.timeout)
		k.nc.SetDeadline(deadline)
		keepAlive, gotBytes, err := c.exchange(k, req.Wire, r)
		if err == nil {
			r.Done = since()
			k.used = true
			if !keepAlive {
				c.drop(req.Addr)
			}
			return
		}
		c.drop(req.Addr)
		if k.used && !gotBytes && attempt == 0 && !errors.Is(err, errTimeout) {
			continue
		}
		r.Done, r.Err, r.Code = since(), errorClass(err), 0
		return
	}
}

func (c *conns) get(addr string) (*conn, error) {
	if k := c.byAddr[addr]; k != nil {
		return k, nil
	}
	k, err := c.dial(addr)
	if err != nil {
		return nil, err
	}
	c.byAddr[addr] = k
	return k, nil
}

func (c *conns) dial(addr string) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, c.timeout)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
}

func (c *conns) drop(addr string) {
	if k := c.byAddr[addr]; k != nil {
		k.nc.Close()
		delete(c.byAddr, addr)
	}
}

var errTimeout = errors.New("timeout")

// exchange writes one request and reads its response. gotBytes reports
// whether any byte of a response arrived.
func (c *conns) exchange(k *conn, wire []byte, r *Result) (keepAlive, gotBytes bool, err error) {
	if _, err := k.nc.Write(wire); err != nil {
		return false, false, netErr(err)
	}
	for {
		line, err := k.br.ReadSlice('\n')
		if err != nil {
			return false, len(line) > 0, netErr(err)
		}
		code, http10, ok := statusLine(line)
		if !ok {
			return false, true, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
		}
		h, err := c.readHead(k.br)
		if err != nil {
			return false, true, err
		}
		if code >= 100 && code < 200 && code != 101 {
			continue // interim response: the final one follows
		}
		r.Code = uint16(code)
		r.Served, r.Failover, r.Version = h.routedTo, h.failover, h.version
		if r.Served == "" {
			r.Served = h.cell
		}
		keepAlive = !h.close && !http10
		switch {
		case code == 204 || code == 304:
		case h.chunked:
			err = discardChunked(k.br)
		case h.length >= 0:
			_, err = k.br.Discard(int(h.length))
		default:
			// No framing: the body runs to the end of the connection.
			_, err = io.Copy(io.Discard, k.br)
			keepAlive = false
		}
		return keepAlive, true, netErr(err)
	}
}

// statusLine parses "HTTP/1.x NNN reason".
func statusLine(line []byte) (code int, http10, ok bool) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, false
	}
	n, err := strconv.Atoi(string(line[9:12]))
	if err != nil || n < 100 || n > 999 {
		return 0, false, false
	}
	return n, line[7] == '0', true
}

// head is what the harness reads from a response head.
type head struct {
	length                            int64 // -1: no Content-Length
	chunked, close                    bool
	routedTo, cell, failover, version string
}

func (c *conns) readHead(br *bufio.Reader) (head, error) {
	h := head{length: -1}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return h, errors.New("response header line over 16 KiB")
			}
			return h, netErr(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("malformed response header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return h, fmt.Errorf("bad Content-Length %q", value)
			}
			h.length = n
		case asciiEqualFold(name, "transfer-encoding"):
			h.chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			h.close = asciiEqualFold(value, "close")
		case asciiEqualFold(name, "x-routed-to"):
			h.routedTo = c.intern(value)
		case asciiEqualFold(name, "x-cell"):
			h.cell = c.intern(value)
		case asciiEqualFold(name, "x-failover-reason"):
			h.failover = c.intern(value)
		case asciiEqualFold(name, "x-config-version"):
			h.version = c.intern(value)
		}
	}
}

func (c *conns) intern(b []byte) string {
	if s, ok := c.strings[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.strings) < 4096 {
		c.strings[s] = s
	}
	return s
}

// discardChunked reads a chunked body (RFC 9112 §7.1) and its trailers.
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailer section, up to the empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func netErr(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed before the response was complete")
	}
	return err
}

// errorClass keeps the cause of a transport error without the addresses, so
// that errors group by cause.
func errorClass(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}
