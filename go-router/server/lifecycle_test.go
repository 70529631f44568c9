package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// readResponse reads one response from br and returns it with its body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// expectClosed waits (at most 2 s) for the server to close c, with no
// bytes before the close.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	rest, err := io.ReadAll(br)
	if len(rest) > 0 {
		t.Errorf("got %q before the close", rest)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("connection still open")
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	started := make(chan string, 1)
	cancelled := make(chan time.Time, 1)
	_, addr := startFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- fmt.Sprintf("%T", w)
		select {
		case <-r.Context().Done():
			cancelled <- time.Now()
		case <-time.After(3 * time.Second):
			close(cancelled)
		}
	}), io.Discard)

	c := dial(t, addr)
	if _, err := io.WriteString(c, get("/")); err != nil {
		t.Fatal(err)
	}
	if w := <-started; w != "*server.response" {
		t.Fatalf("served by %s, want the fast path", w)
	}
	closedAt := time.Now()
	c.Close()
	at, ok := <-cancelled
	if !ok {
		t.Fatal("request context not cancelled after the client closed")
	}
	if d := at.Sub(closedAt); d > time.Second {
		t.Errorf("context cancelled %v after the client closed", d)
	}
}

// The client watch arms after 10 ms and reads a byte: a request pipelined
// meanwhile must get that byte back.
func TestPipelinedRequestDuringWatch(t *testing.T) {
	var rec recorder
	h := caseHandler(func(w http.ResponseWriter, r *http.Request, _ *recorder) {
		if r.URL.Path == "/slow" {
			time.Sleep(60 * time.Millisecond)
			if err := r.Context().Err(); err != nil {
				t.Errorf("context of /slow ended: %v", err)
			}
		}
		echo(w, r, nil)
	})
	_, addr := startFast(t, h.with(&rec), io.Discard)
	for _, next := range []struct{ name, request, want string }{
		{"fast", get("/next"), "GET /next HTTP/1.1 host=example.test body=\"\""},
		{"handed over", "POST /next HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc", `POST /next HTTP/1.1 host=example.test body="abc"`},
	} {
		t.Run(next.name, func(t *testing.T) {
			c := dial(t, addr)
			br := bufio.NewReader(c)
			if _, err := io.WriteString(c, get("/slow")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond)
			if _, err := io.WriteString(c, next.request); err != nil {
				t.Fatal(err)
			}
			if _, body := readResponse(t, br, "GET"); !strings.Contains(body, "GET /slow") {
				t.Errorf("first response: %q", body)
			}
			if _, body := readResponse(t, br, "GET"); !strings.Contains(body, next.want) {
				t.Errorf("second response: %q, want %q", body, next.want)
			}
		})
	}
	writers, _ := rec.snapshot()
	want := "[*server.response *server.response *server.response *http.response]"
	if fmt.Sprint(writers) != want {
		t.Errorf("writers %v, want %v", writers, want)
	}
}

func TestShutdown(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	s, addr := startFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}), io.Discard)

	// An idle keep-alive connection on each path.
	idle := dial(t, addr)
	idleBR := bufio.NewReader(idle)
	io.WriteString(idle, get("/"))
	if resp, _ := readResponse(t, idleBR, "GET"); resp.Close {
		t.Fatal("keep-alive response says close")
	}
	idle10 := dial(t, addr)
	idle10BR := bufio.NewReader(idle10)
	io.WriteString(idle10, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if resp, _ := readResponse(t, idle10BR, "GET"); resp.Close {
		t.Fatal("HTTP/1.0 keep-alive response says close")
	}
	// A request in flight.
	active := dial(t, addr)
	activeBR := bufio.NewReader(active)
	io.WriteString(active, get("/block"))
	<-started

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	expectClosed(t, idle, idleBR)
	expectClosed(t, idle10, idle10BR)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("listener still accepting after Shutdown")
	}

	close(release)
	var raw strings.Builder
	activeBR = bufio.NewReader(io.TeeReader(activeBR, &raw))
	// ReadResponse drops the Connection field it acts on: look at the bytes.
	if resp, body := readResponse(t, activeBR, "GET"); body != "done" || !resp.Close || !strings.Contains(raw.String(), "\r\nConnection: close\r\n") {
		t.Errorf("in-flight response: %q", raw.String())
	}
	expectClosed(t, active, activeBR)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

func TestShutdownContextExpires(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	s, addr := startFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}), io.Discard)
	active := dial(t, addr)
	io.WriteString(active, get("/"))
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	expectClosed(t, active, bufio.NewReader(active))
}

func TestClose(t *testing.T) {
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	defer close(release)
	s, addr := startFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
	}), io.Discard)

	idle := dial(t, addr)
	idleBR := bufio.NewReader(idle)
	io.WriteString(idle, get("/"))
	readResponse(t, idleBR, "GET")
	active := dial(t, addr)
	io.WriteString(active, get("/block"))
	activeHandedOver := dial(t, addr)
	io.WriteString(activeHandedOver, "GET /block HTTP/1.0\r\n\r\n")
	<-started
	<-started
	// Before the first request, in the fast path's read.
	fresh := dial(t, addr)
	time.Sleep(20 * time.Millisecond)

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for name, c := range map[string]net.Conn{"idle": idle, "active": active, "active handed over": activeHandedOver, "fresh": fresh} {
		t.Run(name, func(t *testing.T) {
			br := bufio.NewReader(c)
			if c == idle {
				br = idleBR
			}
			expectClosed(t, c, br)
		})
	}
}

func TestPanic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   any
		wantLog string
	}{
		{"ErrAbortHandler", http.ErrAbortHandler, ""},
		{"other value", "boom", "http: panic serving 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errorLog testkit.Buffer
			var rec recorder
			h := caseHandler(func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "partial")
				panic(tc.value)
			})
			_, addr := startFast(t, h.with(&rec), &errorLog)
			c := dial(t, addr)
			io.WriteString(c, get("/"))
			expectClosed(t, c, bufio.NewReader(c))
			logged := errorLog.String()
			if tc.wantLog == "" && logged != "" {
				t.Errorf("logged %q", logged)
			}
			if tc.wantLog != "" && (!strings.Contains(logged, tc.wantLog) || !strings.Contains(logged, ": boom\n") || !strings.Contains(logged, "goroutine ")) {
				t.Errorf("log %q lacks %q, the value or the stack", logged, tc.wantLog)
			}
			if writers, _ := rec.snapshot(); fmt.Sprint(writers) != "[*server.response]" {
				t.Errorf("writers %v", writers)
			}
		})
	}
}

func TestHeadInPieces(t *testing.T) {
	var rec recorder
	_, addr := startFast(t, caseHandler(echo).with(&rec), io.Discard)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, piece := range []string{"GET /pieces HTTP/1.1\r", "\nHost: exam", "ple.test\r\n\r", "\n"} {
		if _, err := io.WriteString(c, piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if _, body := readResponse(t, br, "GET"); !strings.Contains(body, "GET /pieces HTTP/1.1 host=example.test") {
		t.Errorf("response %q", body)
	}
	if writers, _ := rec.snapshot(); fmt.Sprint(writers) != "[*server.response]" {
		t.Errorf("writers %v, want the fast path", writers)
	}
}

// ReadHeaderTimeout and IdleTimeout close the connection without a
// response, as net/http does.
func TestTimeouts(t *testing.T) {
	ln := listen(t)
	hs := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), io.Discard)
	hs.ReadHeaderTimeout, hs.IdleTimeout = 100*time.Millisecond, 150*time.Millisecond
	s := New(hs)
	go s.Serve(ln) // ends with the test's Close
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()

	partial := dial(t, addr)
	io.WriteString(partial, "GET / HTTP/1.1\r\nHost: exa")
	idle := dial(t, addr)
	idleBR := bufio.NewReader(idle)
	io.WriteString(idle, get("/"))
	readResponse(t, idleBR, "GET")

	start := time.Now()
	expectClosed(t, partial, bufio.NewReader(partial))
	expectClosed(t, idle, idleBR)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("closed after %v, before the timeouts", d)
	}
}

// TestDivergences pins what the fast path deliberately leaves out, next to
// what net/http does for the same handler: go-router's handler uses none
// of it, and a request that needs a protocol switch (the usual reason to
// hijack) is handed to net/http anyway.
func TestDivergences(t *testing.T) {
	report := caseHandler(func(w http.ResponseWriter, r *http.Request, rec *recorder) {
		_, hijacker := w.(http.Hijacker)
		rc := http.NewResponseController(w)
		rec.note("hijacker=%v", hijacker)
		rec.note("SetWriteDeadline: %v", rc.SetWriteDeadline(time.Now().Add(time.Second)))
		rec.note("SetReadDeadline: %v", rc.SetReadDeadline(time.Now().Add(time.Second)))
		rec.note("EnableFullDuplex: %v", rc.EnableFullDuplex())
		rec.note("ServerContextKey set: %v", r.Context().Value(http.ServerContextKey) != nil)
		rec.note("LocalAddrContextKey set: %v", r.Context().Value(http.LocalAddrContextKey) != nil)
		rec.note("RemoteAddr: %v", r.RemoteAddr != "")
	})
	notes := func(start func(*testing.T, http.Handler, io.Writer) string) string {
		var rec recorder
		c := dial(t, start(t, report.with(&rec), io.Discard))
		io.WriteString(c, get("/"))
		readResponse(t, bufio.NewReader(c), "GET")
		_, n := rec.snapshot()
		return strings.Join(n, "; ")
	}
	plain := notes(startPlain)
	fast := notes(func(t *testing.T, h http.Handler, log io.Writer) string { _, addr := startFast(t, h, log); return addr })
	wantPlain := "hijacker=true; SetWriteDeadline: <nil>; SetReadDeadline: <nil>; EnableFullDuplex: <nil>; ServerContextKey set: true; LocalAddrContextKey set: true; RemoteAddr: true"
	wantFast := "hijacker=false; SetWriteDeadline: feature not supported; SetReadDeadline: feature not supported; EnableFullDuplex: feature not supported; ServerContextKey set: false; LocalAddrContextKey set: false; RemoteAddr: true"
	if plain != wantPlain {
		t.Errorf("net/http:\n got %s\nwant %s", plain, wantPlain)
	}
	if fast != wantFast {
		t.Errorf("fast path:\n got %s\nwant %s", fast, wantFast)
	}
}

func TestRemoteAddr(t *testing.T) {
	got := make(chan string, 1)
	_, addr := startFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.RemoteAddr }), io.Discard)
	c := dial(t, addr)
	io.WriteString(c, get("/"))
	readResponse(t, bufio.NewReader(c), "GET")
	if ra := <-got; ra != c.LocalAddr().String() {
		t.Errorf("RemoteAddr %q, want %q", ra, c.LocalAddr())
	}
}
