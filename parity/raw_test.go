package parity

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// rawResponse is one response read off a raw connection.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	// close: the response said Connection: close (net/http takes the
	// field out of the header into Response.Close).
	close bool
}

// rawExchange writes payload on a fresh connection to addr and reads every
// response that comes back until the router closes the connection or wait
// passes. closed reports whether the router closed the connection.
func rawExchange(t testing.TB, addr string, payload []byte, wait time.Duration) (resps []rawResponse, closed bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	// The router may answer (and close) before it has read everything; the
	// write runs on its own so a full socket buffer cannot block the read.
	go func() {
		conn.SetWriteDeadline(time.Now().Add(wait))
		conn.Write(payload)
	}()
	conn.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, isClosed(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resps = append(resps, rawResponse{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close})
		if err != nil {
			return resps, isClosed(err)
		}
	}
}

// rawSequence sends each request on one connection only after the
// previous response has been read (keep-alive without pipelining). A
// request whose method is HEAD is read as a response without a body.
func rawSequence(t testing.TB, addr string, requests ...string) []rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(clientTimeout))
	br := bufio.NewReader(conn)
	var resps []rawResponse
	for i, raw := range requests {
		if _, err := conn.Write([]byte(raw)); err != nil {
			t.Fatalf("request %d: write: %v", i+1, err)
		}
		var req *http.Request
		if strings.HasPrefix(raw, "HEAD ") {
			req = &http.Request{Method: http.MethodHead}
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d: no response on the kept-alive connection: %v", i+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: body: %v", i+1, err)
		}
		resps = append(resps, rawResponse{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close})
	}
	return resps
}

// isClosed tells a connection the peer closed (EOF or reset) from a read
// that timed out on a connection still open.
func isClosed(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// rawUpstream is an upstream written by the test itself, for what the mock
// cells cannot do: exact response bytes and steps synchronised with the
// client. serve handles one request whose head has been read.
type rawUpstream struct{ addr string }

func startRawUpstream(t testing.TB, serve func(req *http.Request, conn net.Conn, br *bufio.Reader) bool) *rawUpstream {
	t.Helper()
	return &rawUpstream{addr: testkit.ServeRequests(t, serve)}
}

func (u *rawUpstream) endpoint() string { return "http://" + u.addr }

// refusedAddr returns a loopback address where every connect is refused:
// a socket bound to it without SO_REUSEADDR and never listening, held until
// the test ends so no other process (a parallel test's router) can take the
// port meanwhile.
func refusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// blackholeAddr returns a loopback address whose connects hang: a listener
// with a full accept queue that never accepts, so the kernel drops further
// SYNs (Linux does, whatever its SYN-cookie setting). It is how the suite
// reaches a connect timeout without leaving 127.0.0.1.
func blackholeAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: connects now hang
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Fatalf("%s still accepts connects with a full queue; no blackhole on this kernel", addr)
	return ""
}
