//go:build linux

package rawconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped accepted connection and the plain client side.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wl := Listener{Listener: ln}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	rc, ok := server.(*Conn)
	if !ok {
		t.Fatalf("Listener.Accept gave %T, want *Conn", server)
	}
	t.Cleanup(func() { rc.Close(); client.Close() })
	deadline := time.Now().Add(5 * time.Second)
	_ = rc.SetDeadline(deadline)
	_ = client.SetDeadline(deadline)
	return rc, client.(*net.TCPConn)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// slowRead reads n bytes in small pieces with pauses, so that the other
// side's writes fill the socket buffers and wait for room.
func slowRead(r io.Reader, n int) ([]byte, error) {
	got := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	for reads := 0; len(got) < n; reads++ {
		k, err := r.Read(buf[:min(len(buf), n-len(got))])
		got = append(got, buf[:k]...)
		if err != nil {
			return got, err
		}
		if reads%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got, nil
}

func TestRoundTripSlowPeer(t *testing.T) {
	rc, client := pair(t)
	// Small buffers make EAGAIN certain.
	_ = client.SetReadBuffer(16 << 10)
	_ = client.SetWriteBuffer(16 << 10)
	const size = 8 << 20
	down, up := randomBytes(size, 1), randomBytes(size, 2)

	type result struct {
		got []byte
		err error
	}
	writeErr := make(chan error, 2)
	clientGot := make(chan result, 1)
	serverGot := make(chan result, 1)
	go func() { _, err := rc.Write(down); writeErr <- err }() // one call, many EAGAINs
	go func() {
		// Several writes, to see partial progress across calls too.
		for rest := up; len(rest) > 0; {
			n, err := client.Write(rest[:min(len(rest), 1<<20)])
			if err != nil {
				writeErr <- err
				return
			}
			rest = rest[n:]
		}
		writeErr <- nil
	}()
	go func() { got, err := slowRead(client, size); clientGot <- result{got, err} }()
	go func() { got, err := slowRead(rc, size); serverGot <- result{got, err} }()

	for range 2 {
		if err := <-writeErr; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if r := <-clientGot; r.err != nil || !bytes.Equal(r.got, down) {
		t.Fatalf("client read %d bytes (err %v), equal=%v", len(r.got), r.err, bytes.Equal(r.got, down))
	}
	if r := <-serverGot; r.err != nil || !bytes.Equal(r.got, up) {
		t.Fatalf("server read %d bytes (err %v), equal=%v", len(r.got), r.err, bytes.Equal(r.got, up))
	}
}

func TestZeroLengthRead(t *testing.T) {
	rc, _ := pair(t)
	if n, err := rc.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
	if n, err := rc.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v", n, err)
	}
}

func assertOpError(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Net != "tcp" || oe.Source == nil || oe.Addr == nil {
		t.Errorf("error %#v is not a %s *net.OpError with addresses", err, op)
	}
}

func TestReadDeadline(t *testing.T) {
	rc, _ := pair(t)
	_ = rc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := rc.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v, want a timeout", err)
	}
	assertOpError(t, err, "read")
	if d := time.Since(start); d > time.Second {
		t.Errorf("timed out after %v", d)
	}
	// A deadline in the past fails at once, and a cleared one lets data in.
	_ = rc.SetReadDeadline(time.Unix(1, 0))
	if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with a past deadline: %v", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	rc, client := pair(t)
	_ = client.SetReadBuffer(4 << 10)
	big := make([]byte, 64<<20) // before the deadline: zeroing it takes a while under -race
	_ = rc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := rc.Write(big) // the peer never reads
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v, want a timeout", n, err)
	}
	assertOpError(t, err, "write")
	if n <= 0 || n >= 64<<20 {
		t.Errorf("wrote %d bytes before the deadline", n)
	}
}

func TestEOF(t *testing.T) {
	rc, client := pair(t)
	client.Write([]byte("last"))
	client.Close()
	got, err := io.ReadAll(rc) // ReadAll stops at io.EOF itself
	if err != nil || string(got) != "last" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read at EOF = %d, %v, want io.EOF itself", n, err)
	}
}

func TestClosed(t *testing.T) {
	rc, _ := pair(t)
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := rc.Read(make([]byte, 1))
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	assertOpError(t, err, "read")
	if _, err := rc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	rc, _ := pair(t)
	done := make(chan error, 1)
	go func() { _, err := rc.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	rc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("pending Read: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a pending Read")
	}
}

func TestPeerReset(t *testing.T) {
	rc, client := pair(t)
	_ = client.SetLinger(0)
	client.Close() // RST
	time.Sleep(20 * time.Millisecond)
	_, readErr := rc.Read(make([]byte, 1))
	var writeErr error
	for range 10 {
		if _, writeErr = rc.Write([]byte("x")); writeErr != nil {
			break
		}
	}
	if !errors.Is(readErr, syscall.ECONNRESET) && !errors.Is(writeErr, syscall.ECONNRESET) {
		t.Errorf("after a reset: read %v, write %v; want ECONNRESET", readErr, writeErr)
	}
	if errors.Is(readErr, syscall.ECONNRESET) {
		assertOpError(t, readErr, "read")
	}
}

func TestCloseWrite(t *testing.T) {
	rc, client := pair(t)
	rc.Write([]byte("request"))
	if err := rc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "request" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	// The read side still works.
	client.Write([]byte("reply"))
	client.Close()
	got, err = io.ReadAll(rc)
	if err != nil || string(got) != "reply" {
		t.Fatalf("read after CloseWrite: %q, %v", got, err)
	}
}

func TestAddrs(t *testing.T) {
	rc, client := pair(t)
	if rc.LocalAddr().String() != client.RemoteAddr().String() || rc.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("addresses %v %v vs %v %v", rc.LocalAddr(), rc.RemoteAddr(), client.LocalAddr(), client.RemoteAddr())
	}
}

func TestWrapNonTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Errorf("Wrap(net.Pipe) = %T, want it unchanged", got)
	}
}

func TestDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	d := &Dialer{Dialer: net.Dialer{Timeout: 2 * time.Second}}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*Conn); !ok {
		t.Fatalf("DialContext gave %T, want *Conn", c)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Errorf("echo: %q, %v", got, err)
	}

	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:1"); err == nil {
		t.Error("dial to a closed port succeeded")
	}
}

func TestListenerAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if c, err := (Listener{Listener: ln}).Accept(); c != nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v, %v", c, err)
	}
}

// TestConcurrentWrites checks that Writes from several goroutines never
// interleave inside one buffer, as on a *net.TCPConn: the per-call state
// in Conn must not be shared between them.
func TestConcurrentWrites(t *testing.T) {
	c, peer := pair(t)
	const writers, messages, size = 8, 100, 1024
	done := make(chan error, writers)
	for id := range writers {
		go func() {
			msg := bytes.Repeat([]byte{byte('a' + id)}, size)
			for range messages {
				if _, err := c.Write(msg); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, writers*messages*size)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for off := 0; off < len(got); off += size {
		block := got[off : off+size]
		if bytes.Count(block, block[:1]) != size {
			t.Fatalf("bytes %d-%d mix writers: %q...", off, off+size, block[:32])
		}
	}
}
