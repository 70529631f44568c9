package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cellbench/go-router/rawconn"
	"cellbench/internal/testkit"
)

// maxHeaderBytes is go-router's setting (go-router/main.go): 431 above 64 KiB.
const maxHeaderBytes = 64<<10 - 4096

// recorder notes, per server, the ResponseWriter type of every handler call
// and whatever a case wants to compare (Write errors, for one).
type recorder struct {
	mu      sync.Mutex
	writers []string
	notes   []string
}

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) snapshot() (writers, notes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writers...), append([]string(nil), r.notes...)
}

type caseHandler func(w http.ResponseWriter, r *http.Request, rec *recorder)

func (h caseHandler) with(rec *recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.writers = append(rec.writers, fmt.Sprintf("%T", w))
		rec.mu.Unlock()
		h(w, r, rec)
	})
}

func newHTTPServer(h http.Handler, errorLog io.Writer) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       10 * time.Second,
		ErrorLog:          log.New(errorLog, "", 0),
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startPlain serves h with net/http.Server alone.
func startPlain(t *testing.T, h http.Handler, errorLog io.Writer) string {
	t.Helper()
	ln := listen(t)
	hs := newHTTPServer(h, errorLog)
	go hs.Serve(ln) // ends with the test's Close
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// startFast serves h with the fast path in front of net/http.Server, on a
// rawconn listener as go-router does.
func startFast(t *testing.T, h http.Handler, errorLog io.Writer) (*Server, string) {
	t.Helper()
	ln := listen(t)
	s := New(newHTTPServer(h, errorLog))
	served := make(chan error, 1)
	go func() { served <- s.Serve(rawconn.Listener{Listener: ln}) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn)
}

// exchange sends raw to addr and returns every byte the server sent back:
// one response per entry of methods (1xx interim responses included),
// then "[EOF]" or "[RST]" if the server closed the connection. It reads
// with http.ReadResponse to know where responses end, but returns the
// bytes as they came.
func exchange(t *testing.T, addr string, raw []byte, methods []string, closeWrite bool) string {
	t.Helper()
	c := dial(t, addr)
	go func() {
		// A big head may be refused before it is all written; the error
		// shows in the response.
		_, _ = c.Write(raw)
		if closeWrite {
			_ = c.CloseWrite()
		}
	}()
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	closing := false
responses:
	for _, m := range methods {
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: m})
			if err != nil {
				closing = true
				break responses
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				closing = true
				break responses
			}
			if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
				closing = resp.Close
				break
			}
		}
		if closing {
			break
		}
	}
	// Whatever follows: more bytes (a bug either way) or the close. A
	// connection kept open is seen as a read that times out.
	wait := 50 * time.Millisecond
	if closing {
		wait = 3 * time.Second
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, br)
	switch {
	case err == nil:
		got.WriteString("[EOF]")
	case errors.Is(err, syscall.ECONNRESET):
		got.WriteString("[RST]")
	case errors.Is(err, os.ErrDeadlineExceeded):
	default:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			got.WriteString("[" + err.Error() + "]")
		}
	}
	return got.String()
}

var datePattern = regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)

func normalize(raw string) string {
	return datePattern.ReplaceAllString(raw, "\r\nDate: DATE\r\n")
}

type diffCase struct {
	name    string
	request string
	// methods lists the request method of each response to read; nil is
	// one GET.
	methods []string
	// fast: the fast path serves every request of the case; otherwise
	// the connection goes to net/http.Server (and the handler, if it
	// runs, sees net/http's writer).
	fast       bool
	closeWrite bool
	handler    caseHandler
	// want, if set, must be in the (normalized) response.
	want []string
	// chunkFraming: a deliberate divergence. net/http passes the body
	// through a 2 KiB bufio.Writer, so its chunks are cut at 2 KiB
	// boundaries (and WriteString always goes through that buffer);
	// the fast path makes one chunk of what it held before the head
	// and then one chunk per Write. The bytes are compared with each
	// chunked body joined into one chunk, and want checks the fast
	// path's own framing.
	chunkFraming bool
}

func get(target string, extra ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: example.test\r\n" + strings.Join(extra, "") + "\r\n"
}

func writeString(s string) caseHandler {
	return func(w http.ResponseWriter, r *http.Request, _ *recorder) { io.WriteString(w, s) }
}

// echo reports the request as the handler saw it, body included.
func echo(w http.ResponseWriter, r *http.Request, _ *recorder) {
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s host=%s body=%q err=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, body, err)
}

func diffCases() []diffCase {
	bigBody := strings.Repeat("0123456789abcdef", 200) // 3200 bytes
	return []diffCase{
		{
			name: "typed body with Content-Length", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
			},
			want: []string{"Content-Length: 5\r\n"},
		},
		{
			name: "untyped small body", request: get("/"), fast: true,
			handler: writeString("<html><body>hi</body></html>"),
			want:    []string{"Content-Type: text/html; charset=utf-8\r\n", "Content-Length: 28\r\n"},
		},
		{
			name: "unknown length over 2 KiB, one Write", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Write([]byte(bigBody))
			},
			want: []string{"Transfer-Encoding: chunked\r\n\r\nc80\r\n"},
		},
		{
			name: "unknown length over 2 KiB, WriteString", request: get("/"), fast: true,
			handler: writeString(bigBody), chunkFraming: true,
			want: []string{"Transfer-Encoding: chunked\r\n\r\nc80\r\n"},
		},
		{
			name: "unknown length, typed, written in 1 KiB pieces", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "application/octet-stream")
				for i := 0; i < 3; i++ {
					w.Write([]byte(bigBody[:1000]))
				}
			},
			chunkFraming: true,
			want:         []string{"Transfer-Encoding: chunked\r\n\r\nbb8\r\n"},
		},
		{
			name: "flush in the middle", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				io.WriteString(w, "first part")
				w.(http.Flusher).Flush()
				io.WriteString(w, "second part")
			},
			want: []string{"Transfer-Encoding: chunked\r\n", "a\r\nfirst part\r\n"},
		},
		{
			name: "flush through ResponseController before any write", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, rec *recorder) {
				w.Header().Set("X-Early", "1")
				rec.note("flush: %v", http.NewResponseController(w).Flush())
				io.WriteString(w, "late")
			},
		},
		{
			name: "HEAD with Content-Length", request: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n",
			methods: []string{"HEAD"}, fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "1234")
			},
			want: []string{"Content-Length: 1234\r\n"},
		},
		{
			name: "HEAD where the handler writes a body, then a GET", request: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n" + get("/"),
			methods: []string{"HEAD", "GET"}, fast: true,
			handler: writeString("<p>body for a HEAD</p>"),
		},
		{
			name: "HEAD, handler writes over 2 KiB", request: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n",
			methods: []string{"HEAD"}, fast: true,
			handler: writeString(bigBody),
		},
		{
			name: "HEAD, handler writes nothing", request: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n",
			methods: []string{"HEAD"}, fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {},
		},
		{
			name: "204, body write refused", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, rec *recorder) {
				w.Header().Set("Content-Length", "3")
				w.WriteHeader(http.StatusNoContent)
				_, err := io.WriteString(w, "abc")
				rec.note("write: %v", err)
			},
		},
		{
			name: "304 with Content-Type and Content-Length", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "10")
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
			},
		},
		{
			name: "103 then 200", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "after hints")
			},
			want: []string{"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"},
		},
		{
			name: "trailers via TrailerPrefix set after the body", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				io.WriteString(w, bigBody)
				w.Header().Set(http.TrailerPrefix+"X-Checksum", "abc")
				w.Header().Set(http.TrailerPrefix+"X-Another", "def")
				w.Header()[http.TrailerPrefix+"x-lower"] = []string{"ghi"}
			},
			chunkFraming: true,
			want:         []string{"0\r\nX-Another: def\r\nX-Checksum: abc\r\nx-lower: ghi\r\n\r\n"},
		},
		{
			name: "trailers declared in the Trailer header", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				// Cache-Control may not be a trailer: net/http drops it.
				w.Header().Set("Trailer", "X-Sum, x-count,Cache-Control")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "short body")
				w.Header().Set("X-Sum", "s1")
				w.Header().Set("X-Count", "10")
				w.Header().Set("Cache-Control", "no-store")
			},
			want: []string{"Trailer: X-Sum, x-count,Cache-Control\r\n", "0\r\nX-Count: 10\r\nX-Sum: s1\r\n\r\n"},
		},
		{
			name: "fewer bytes than Content-Length", request: get("/") + get("/second"), methods: []string{"GET", "GET"}, fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "hello")
			},
			want: []string{"hello[EOF]"},
		},
		{
			name: "more than Content-Length", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, rec *recorder) {
				w.Header().Set("Content-Length", "5")
				_, err := io.WriteString(w, "hello world")
				rec.note("write: %v", err)
			},
		},
		{
			name: "more than Content-Length, then a write that fits", request: get("/") + get("/second"),
			methods: []string{"GET", "GET"}, fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, rec *recorder) {
				w.Header().Set("Content-Length", "5")
				_, err := io.WriteString(w, "hello world")
				rec.note("write: %v", err)
				_, err = io.WriteString(w, "hello")
				rec.note("write: %v", err)
			},
		},
		{
			name: "invalid Content-Length set by the handler", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Length", "five")
				io.WriteString(w, "hello")
			},
		},
		{
			name: "request with Connection: close", request: get("/", "Connection: close\r\n"), fast: true,
			handler: writeString("bye"),
			want:    []string{"Connection: close\r\n", "[EOF]"},
		},
		{
			name: "handler sets Connection: close", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			},
			want: []string{"Connection: close\r\n", "[EOF]"},
		},
		{
			name: "handler sets Transfer-Encoding: identity", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Transfer-Encoding", "identity")
				io.WriteString(w, "until close")
			},
		},
		{
			name: "status 599", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.WriteHeader(599)
			},
			want: []string{"HTTP/1.1 599 status code 599\r\n"},
		},
		{
			name: "invalid field names and CR/LF in values", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header()["Bad\r\nInjected: 1\r\nX"] = []string{"v"}
				w.Header()["Bad Name"] = []string{"v"}
				w.Header()["X-Folded"] = []string{"a\r\nInjected: 2", "  padded\t"}
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "ok")
			},
			want: []string{"X-Folded: a  Injected: 2\r\n", "X-Folded: padded\r\n"},
		},
		{
			name: "superfluous WriteHeader", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.WriteHeader(http.StatusAccepted)
				w.WriteHeader(http.StatusTeapot)
			},
		},
		{
			name: "empty 200, no writes", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {},
			want:    []string{"HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Length: 0\r\n\r\n"},
		},
		{
			name: "handler sets its own Date", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
			},
		},
		{
			name: "two pipelined requests in one write", request: get("/a") + get("/b"),
			methods: []string{"GET", "GET"}, fast: true,
			handler: echo,
			want:    []string{"GET /a HTTP/1.1", "GET /b HTTP/1.1"},
		},
		{
			name: "query and request fields", request: get("/p%20q?x=1&y=%2F", "X-Forwarded-For: 10.0.0.1\r\n"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				fmt.Fprintf(w, "%q %q %q %q", r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Forwarded-For"), r.Host)
			},
		},
		{
			name: "header changed after WriteHeader", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("X-Before", "1")
				w.WriteHeader(http.StatusCreated)
				w.Header().Set("X-After", "1")
				io.WriteString(w, "body")
			},
		},
		{
			name: "typed, Content-Length, 10 KiB body", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", "10240")
				for i := 0; i < 10; i++ {
					w.Write([]byte(strings.Repeat(string(rune('a'+i)), 1024)))
				}
			},
		},
		{
			name: "Content-Length without a type", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Length", "11")
				io.WriteString(w, "{\"a\": 1}\n\n")
			},
		},
		{
			name: "Content-Encoding, no sniffing", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Content-Encoding", "gzip")
				io.WriteString(w, "\x1f\x8b not really")
			},
		},
		{
			name: "handler sets Transfer-Encoding: chunked", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Transfer-Encoding", "chunked")
				io.WriteString(w, "small")
			},
		},
		{
			name: "handler sets Transfer-Encoding and Content-Length", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Transfer-Encoding", "chunked")
				w.Header().Set("Content-Length", "5")
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "small")
			},
		},
		{
			name: "http.Error", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				http.Error(w, "no such thing", http.StatusNotFound)
			},
		},
		{
			name: "http.Redirect", request: get("/old?q=1"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				http.Redirect(w, r, "/new", http.StatusFound)
			},
		},
		{
			name: "request Connection: Keep-Alive, Close", request: get("/", "Connection: Keep-Alive, Close\r\n"), fast: true,
			handler: writeString("bye"),
		},
		{
			name: "handler sets Connection: Close (not lower case)", request: get("/") + get("/again"),
			methods: []string{"GET", "GET"}, fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				w.Header().Set("Connection", "Close")
				io.WriteString(w, "maybe")
			},
		},
		{
			name: "custom method, empty field, IPv6 host", request: "PURGE /x HTTP/1.1\r\nHost: [::1]:8080\r\nX-Empty:\r\nX-Tab: a\tb \r\n\r\n",
			fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				fmt.Fprintf(w, "%s %q %q %q", r.Method, r.Host, r.Header["X-Empty"], r.Header.Get("X-Tab"))
			},
		},
		{
			name: "head of 7 KiB with one long field", request: get("/long", "X-Long: "+strings.Repeat("l", 7<<10)+"\r\n"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				fmt.Fprintf(w, "%d", len(r.Header.Get("X-Long")))
			},
		},
		{
			name: "400 pipelined requests in one write", request: strings.Repeat(get("/p"), 400),
			methods: slices.Repeat([]string{"GET"}, 400), fast: true,
			handler: echo,
		},
		{
			name:    "empty Host",
			request: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			handler: echo,
		},
		{
			name:    "GET with Transfer-Encoding",
			request: "GET / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			handler: echo,
		},
		{
			name:    "malformed request line",
			request: "GET /a b HTTP/1.1\r\nHost: example.test\r\n\r\n",
			handler: echo,
		},
		{
			name:    "CRLF then a bare LF ends the head",
			request: "GET /mixed HTTP/1.1\r\nHost: example.test\r\n\n",
			handler: echo,
		},
		{
			name: "client half-closes while the handler runs", request: get("/"), fast: true, closeWrite: true,
			handler: func(w http.ResponseWriter, r *http.Request, rec *recorder) {
				time.Sleep(50 * time.Millisecond)
				rec.note("context: %v", r.Context().Err())
				io.WriteString(w, "late")
			},
		},
		{
			name: "panic with http.ErrAbortHandler", request: get("/"), fast: true,
			handler: func(w http.ResponseWriter, r *http.Request, _ *recorder) {
				io.WriteString(w, "never sent")
				panic(http.ErrAbortHandler)
			},
			want: []string{"[EOF]"},
		},

		// Handed over to net/http.Server.
		{
			name:    "POST with a Content-Length body",
			request: "POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello",
			handler: echo, want: []string{`body="hello"`},
		},
		{
			name:    "chunked request body",
			request: "POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			handler: echo, want: []string{`body="hello"`},
		},
		{
			name:    "HTTP/1.0",
			request: "GET / HTTP/1.0\r\nHost: example.test\r\n\r\n",
			handler: echo, want: []string{"HTTP/1.0"},
		},
		{
			name:    "HTTP/1.0 keep-alive",
			request: "GET / HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n",
			handler: echo, want: []string{"Connection: keep-alive"},
		},
		{
			name:    "two Host headers",
			request: "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
			handler: echo, want: []string{"HTTP/1.1 400 Bad Request"},
		},
		{
			name:    "no Host header",
			request: "GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
			handler: echo, want: []string{"HTTP/1.1 400 Bad Request"},
		},
		{
			name:    "invalid Host",
			request: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
			handler: echo, want: []string{"HTTP/1.1 400 Bad Request"},
		},
		{
			name:    "head of 20 KiB",
			request: get("/big", "X-Big: "+strings.Repeat("b", 20<<10)+"\r\n"),
			handler: echo, want: []string{"HTTP/1.1 200 OK"},
		},
		{
			name:    "head over 1 MiB",
			request: get("/huge", "X-Big: "+strings.Repeat("b", 1<<20+100)+"\r\n"),
			handler: echo, want: []string{"HTTP/1.1 431 Request Header Fields Too Large"},
		},
		{
			name:    "bare LF line endings",
			request: "GET /lf HTTP/1.1\nHost: example.test\n\n",
			handler: echo, want: []string{"GET /lf HTTP/1.1"},
		},
		{
			name:    "bare LF ending a field only",
			request: "GET /lf HTTP/1.1\r\nHost: example.test\nX-A: b\r\n\r\n",
			handler: echo,
		},
		{
			name:    "obs-fold",
			request: "GET / HTTP/1.1\r\nHost: example.test\r\nX-Folded: a\r\n b\r\n\r\n",
			handler: echo,
		},
		{
			name:    "leading CRLF",
			request: "\r\nGET /after-crlf HTTP/1.1\r\nHost: example.test\r\n\r\n",
			handler: echo,
		},
		{
			name:    "absolute-form target",
			request: "GET http://example.test/abs HTTP/1.1\r\nHost: example.test\r\n\r\n",
			handler: echo, want: []string{"GET http://example.test/abs HTTP/1.1"},
		},
		{
			name:    "asterisk-form OPTIONS",
			request: "OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n",
			handler: echo,
		},
		{
			name:    "Expect: 100-continue",
			request: "POST /upload HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
			handler: echo, want: []string{"HTTP/1.1 100 Continue\r\n\r\n", `body="hello"`},
		},
		{
			name:    "Upgrade",
			request: get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n"),
			handler: echo,
		},
		{
			name:    "control character in a field value",
			request: get("/", "X-A: a\x01b\r\n"),
			handler: echo, want: []string{"HTTP/1.1 400 Bad Request"},
		},
		{
			name:    "partial head, then the client closes",
			request: "GET /partial HTTP/1.1\r\nHost: exa", closeWrite: true,
			handler: echo, want: []string{"[EOF]"},
		},
		{
			name:    "fast request, then one to hand over",
			request: get("/first") + "POST /second HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nhi",
			methods: []string{"GET", "POST"},
			handler: echo, want: []string{"GET /first", `POST /second HTTP/1.1 host=example.test body="hi"`},
		},
	}
}

// TestDifferential sends the same bytes to net/http.Server and to the fast
// path serving the same handler, and compares the bytes that come back.
func TestDifferential(t *testing.T) {
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			methods := tc.methods
			if methods == nil {
				methods = []string{"GET"}
			}
			var plainRec, fastRec recorder
			var plainLog, fastLog testkit.Buffer
			plainAddr := startPlain(t, tc.handler.with(&plainRec), &plainLog)
			_, fastAddr := startFast(t, tc.handler.with(&fastRec), &fastLog)

			var wg sync.WaitGroup
			var plain, fast string
			wg.Add(2)
			go func() { defer wg.Done(); plain = exchange(t, plainAddr, []byte(tc.request), methods, tc.closeWrite) }()
			go func() { defer wg.Done(); fast = exchange(t, fastAddr, []byte(tc.request), methods, tc.closeWrite) }()
			wg.Wait()
			plain, fast = normalize(plain), normalize(fast)
			plainCmp, fastCmp := plain, fast
			if tc.chunkFraming {
				plainCmp, fastCmp = joinChunks(t, plain), joinChunks(t, fast)
			}

			if plainCmp != fastCmp {
				t.Errorf("responses differ\nnet/http:  %q\nfast path: %q", truncate(plain), truncate(fast))
			}
			for _, w := range tc.want {
				if !strings.Contains(fast, w) {
					t.Errorf("response lacks %q:\n%q", w, truncate(fast))
				}
			}
			plainWriters, plainNotes := plainRec.snapshot()
			fastWriters, fastNotes := fastRec.snapshot()
			if fmt.Sprint(plainNotes) != fmt.Sprint(fastNotes) {
				t.Errorf("handler notes differ\nnet/http:  %q\nfast path: %q", plainNotes, fastNotes)
			}
			if len(plainWriters) != len(fastWriters) {
				t.Errorf("handler ran %d times on net/http, %d on the fast path", len(plainWriters), len(fastWriters))
			}
			for i, w := range fastWriters {
				want := "*http.response"
				// A connection handed over stays with net/http.
				if tc.fast || tc.name == "fast request, then one to hand over" && i == 0 {
					want = "*server.response"
				}
				if w != want {
					t.Errorf("request %d was served by %s, want %s", i, w, want)
				}
			}
			if strings.Contains(plainLog.String(), "superfluous") != strings.Contains(fastLog.String(), "superfluous") ||
				strings.Contains(plainLog.String(), "invalid Content-Length") != strings.Contains(fastLog.String(), "invalid Content-Length") {
				t.Errorf("error logs differ\nnet/http:  %q\nfast path: %q", plainLog.String(), fastLog.String())
			}
		})
	}
}

// joinChunks rewrites the chunked body of a single response as one chunk.
func joinChunks(t *testing.T, raw string) string {
	t.Helper()
	head, rest, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok || !strings.Contains(head, "Transfer-Encoding: chunked") {
		return raw
	}
	var body strings.Builder
	for {
		line, after, ok := strings.Cut(rest, "\r\n")
		var size int
		if _, err := fmt.Sscanf(line, "%x", &size); !ok || err != nil || len(after) < size+2 {
			t.Fatalf("bad chunk framing at %q", truncate(rest))
		}
		if size == 0 {
			return fmt.Sprintf("%s\r\n\r\n%x\r\n%s\r\n0\r\n%s", head, body.Len(), body.String(), after)
		}
		body.WriteString(after[:size])
		rest = after[size+2:]
	}
}

func truncate(s string) string {
	if len(s) > 600 {
		return s[:300] + "..." + s[len(s)-300:]
	}
	return s
}
