package rawconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// maxRW caps one read or write, as internal/poll does, so that a huge
// buffer never turns into one very long uninterruptible kernel call.
const maxRW = 1 << 30

// Conn is a *net.TCPConn whose Read and Write use RawSyscall.
type Conn struct {
	tcp *net.TCPConn
	raw syscall.RawConn
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
	return &Conn{tcp: tcp, raw: raw}
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait in the netpoller, then try again
			}
			n, errno = int(r), e
			if e == 0 {
				raceAcquire(fd)
			}
			return true
		}
	})
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

func (c *Conn) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.raw.Write(func(fd uintptr) bool {
		raceReleaseMerge(fd)
		for n < len(p) {
			chunk := p[n:]
			if len(chunk) > maxRW {
				chunk = chunk[:maxRW]
			}
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
			switch {
			case e == 0 && r == 0:
				errno = syscall.EIO // write(2) of a non-empty buffer never returns 0
				return true
			case e == 0:
				n += int(r)
			case e == syscall.EINTR:
			case e == syscall.EAGAIN:
				return false // socket buffer full: wait until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, c.opError("write", unwrapRaw(err))
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
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
