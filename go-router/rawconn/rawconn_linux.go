package rawconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"cellbench/go-router/tunedpath"
)

// maxRW caps one read or write, as internal/poll does, so that a huge
// buffer never turns into one very long uninterruptible kernel call.
const maxRW = 1 << 30

// Conn is a *net.TCPConn whose Read and Write use RawSyscall.
//
// The state of the read and the write in progress lives in the Conn, and
// the callbacks handed to RawConn are bound once in Wrap: a closure per
// call would cost an allocation per read and per write. rmu and wmu keep
// concurrent reads (or writes) from sharing that state, which net.Conn
// allows callers to attempt.
type Conn struct {
	tcp *net.TCPConn
	raw syscall.RawConn

	rmu, wmu sync.Mutex
	rd       ioState
	wr       ioState
	readFn   func(fd uintptr) bool
	writeFn  func(fd uintptr) bool
}

// ioState is one read or write in progress.
type ioState struct {
	buf   []byte
	n     int
	errno syscall.Errno
}

// Wrap returns c as a Conn when it is a *net.TCPConn, otherwise c itself.
func Wrap(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return c
	}
	tunedpath.Mark(tunedpath.RawConn)
	rc := &Conn{tcp: tcp, raw: raw}
	rc.readFn, rc.writeFn = rc.readOnce, rc.writeAll
	return rc
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	c.rmu.Lock()
	c.rd = ioState{buf: p}
	err := c.raw.Read(c.readFn)
	n, errno := c.rd.n, c.rd.errno
	c.rd.buf = nil // the caller's buffer is not kept
	c.rmu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", unwrapRaw(err))
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce is RawConn's read callback: false means "not ready, wait in the
// netpoller and call again".
func (c *Conn) readOnce(fd uintptr) bool {
	p := c.rd.buf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			raceAcquire(fd)
		}
		c.rd.n, c.rd.errno = int(r), e
		return true
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wr = ioState{buf: p}
	err := c.raw.Write(c.writeFn)
	n, errno := c.wr.n, c.wr.errno
	c.wr.buf = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", unwrapRaw(err))
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// writeAll is RawConn's write callback: it writes until the buffer is
// done, and returns false to wait when the socket buffer is full.
func (c *Conn) writeAll(fd uintptr) bool {
	raceReleaseMerge(fd)
	w := &c.wr
	for w.n < len(w.buf) {
		chunk := w.buf[w.n:]
		if len(chunk) > maxRW {
			chunk = chunk[:maxRW]
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
		switch {
		case e == 0 && r == 0:
			w.errno = syscall.EIO // write(2) of a non-empty buffer never returns 0
			return true
		case e == 0:
			w.n += int(r)
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// opError reports an error as *net.TCPConn would, so that callers'
// checks (net.Error Timeout, errors.Is ECONNRESET, net.ErrClosed) hold.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.tcp.LocalAddr(), Addr: c.tcp.RemoteAddr(), Err: err}
}

// unwrapRaw strips the "raw-read"/"raw-write" OpError that RawConn puts
// around deadline and closed-connection errors.
func unwrapRaw(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

func (c *Conn) Close() error                       { return c.tcp.Close() }
func (c *Conn) CloseWrite() error                  { return c.tcp.CloseWrite() }
func (c *Conn) LocalAddr() net.Addr                { return c.tcp.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.tcp.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.tcp.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.tcp.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tcp.SetWriteDeadline(t) }
