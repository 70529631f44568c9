package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/go-router/engine"
	"cellbench/go-router/snapshot"
	"cellbench/go-router/upstream"
	"cellbench/internal/testkit"
)

// The two engines' upstream clients give the same answers to the same
// upstream bytes: each case is a scripted upstream on a raw socket, sent
// through a router on each engine, and the client-visible outcome must be
// the case's, for both.
func TestUpstreamClientsAgree(t *testing.T) {
	type upstreamScript func(conn net.Conn, seen int) (keepAlive bool)
	answer := func(raw string) upstreamScript {
		return func(conn net.Conn, _ int) bool { io.WriteString(conn, raw); return true }
	}
	cases := []struct {
		name, method, body string
		script             upstreamScript
		want               string
	}{
		{"plain", "GET", "", answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\nhello"),
			`200 up=1 attempts=1 body="hello"`},
		{"head", "HEAD", "", answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\n"),
			`200 up=1 attempts=1 body=""`},
		{"no content", "GET", "", answer("HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n"),
			`204 up=1 attempts=1 body=""`},
		{"chunked with trailer", "GET", "", answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nX-Up: 1\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n"),
			`200 up=1 attempts=1 body="hello" trailer=v`},
		{"early hints", "GET", "", answer("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok"),
			`200 up=1 attempts=1 body="ok" 1xx=[103]`},
		{"early hints, final answer 50 ms later", "GET", "", func(conn net.Conn, _ int) bool {
			io.WriteString(conn, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok")
			return true
		}, `200 up=1 attempts=1 body="ok" 1xx=[103]`},
		{"head in two pieces 50 ms apart", "GET", "", func(conn net.Conn, _ int) bool {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(conn, "Content-Length: 2\r\nX-Up: 1\r\n\r\nok")
			return true
		}, `200 up=1 attempts=1 body="ok"`},
		{"connection close", "GET", "", func(conn net.Conn, _ int) bool {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\nX-Up: 1\r\n\r\nbye")
			return false
		}, `200 up=1 attempts=1 body="bye"`},
		{"unsolicited 100 Continue", "GET", "", answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok"),
			`200 up=1 attempts=1 body="ok"`},
		{"HTTP/1.0 body ended by close", "GET", "", func(conn net.Conn, _ int) bool {
			io.WriteString(conn, "HTTP/1.0 200 OK\r\nX-Up: 1\r\n\r\nold")
			return false
		}, `200 up=1 attempts=1 body="old"`},
		{"Content-Length and chunked", "GET", "", answer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
			`200 up=1 attempts=1 body="ok"`},
		{"two different Content-Lengths", "GET", "", answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
			`502 attempts=2 error=upstream_error`},
		{"post", "POST", "abc", answer("HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Up: 1\r\n\r\n"),
			`201 up=1 attempts=1 body=""`},
		{"503 then 200", "GET", "", func(conn net.Conn, seen int) bool {
			if seen == 1 {
				io.WriteString(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			} else {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Up: 1\r\n\r\n")
			}
			return true
		}, `200 up=1 attempts=2 body=""`},
		{"header timeout", "GET", "", func(conn net.Conn, _ int) bool { time.Sleep(1500 * time.Millisecond); return false },
			`504 attempts=2 error=upstream_timeout`},
		{"hang up", "GET", "", func(net.Conn, int) bool { return false },
			`502 attempts=2 error=upstream_error`},
		{"not http", "GET", "", answer("SMTP ready\r\n\r\n"),
			`502 attempts=2 error=upstream_error`},
		{"head over 1 MiB", "GET", "", answer("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", upstream.MaxResponseHeaderBytes) + "\r\n\r\n"),
			`502 attempts=2 error=upstream_error`},
		{"body cut short", "GET", "", func(conn net.Conn, _ int) bool {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Up: 1\r\n\r\nhello")
			return false
		}, `round trip: EOF`},
	}
	for _, e := range []engine.Engine{engine.Stdlib, engine.Tuned} {
		for _, c := range cases {
			endpoint := scriptedUpstream(t, c.script)
			got := sendThrough(t, e, endpoint, c.method, c.body, 2, 1000)
			if got != c.want {
				t.Errorf("engine %s, %s: %s\n                                 want %s", e, c.name, got, c.want)
			}
		}
	}
}

// Both engines report a connect failure as such, and replace a kept-alive
// connection the upstream closed while it idled without failing a request.
func TestUpstreamClientsConnectFailureAndStaleConnection(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	closeAfterAnswer := scriptedUpstream(t, func(conn net.Conn, _ int) bool {
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok")
		time.Sleep(10 * time.Millisecond)
		return false // closed while the router keeps it idle
	})
	for _, e := range []engine.Engine{engine.Stdlib, engine.Tuned} {
		if got, want := sendThrough(t, e, refused, "GET", "", 2, 100), `502 attempts=2 error=upstream_connect_error`; got != want {
			t.Errorf("engine %s, refused: %s, want %s", e, got, want)
		}
		rt, _ := newTestRouter(t, oneUpstreamDoc("v1", closeAfterAnswer, ""))
		srv := httptest.NewServer(rt)
		for i := range 3 {
			if got, want := sendTo(t, srv.URL, "GET", ""), `200 up=1 attempts=1 body="ok"`; got != want {
				t.Errorf("engine %s, request %d after the upstream closed its connection: %s, want %s", e, i, got, want)
			}
			time.Sleep(30 * time.Millisecond)
		}
		srv.Close()
	}
}

// Both engines send the request target as the client sent it, with a body
// (http.Transport on both) and without (the tuned pool or the Transport).
func TestUpstreamClientsSendTheTargetAsReceived(t *testing.T) {
	cell := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) })
	targets := map[string]string{ // sent → received
		"/a|b{c}": "/a|b{c}", `/q"^` + "`" + `\`: `/q"^` + "`" + `\`, "/%7e%7E/a%2fb?x=%2f&y=|": "/%7e%7E/a%2fb?x=%2f&y=|",
		"//x//y?z": "//x//y?z", "/": "/", "http://h.example/abs?q": "/abs?q",
	}
	for _, e := range []engine.Engine{engine.Stdlib, engine.Tuned} {
		rt := New(Options{Engine: e, Events: slog.New(slog.DiscardHandler)})
		defer rt.Close()
		if err := rt.Store().Apply([]byte(oneUpstreamDoc("v1", cell, "")), snapshot.SourceFile); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(rt)
		defer srv.Close()
		for sent, want := range targets {
			for _, body := range []string{"", "abc"} {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: h.example\r\nX-Routing-Key: k\r\nContent-Length: %d\r\n\r\n%s", sent, len(body), body)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("engine %s, %q: %v", e, sent, err)
				}
				got, _ := io.ReadAll(resp.Body)
				conn.Close()
				if string(got) != want {
					t.Errorf("engine %s, %q with body %q: the cell got %q, want %q", e, sent, body, got, want)
				}
			}
		}
	}
}

// scriptedUpstream serves every request read from a connection with
// script, which is told how many requests the upstream has seen.
func scriptedUpstream(t *testing.T, script func(conn net.Conn, seen int) bool) string {
	t.Helper()
	var seen atomic.Int64
	return "http://" + testkit.ServeRequests(t, func(req *http.Request, conn net.Conn, _ *bufio.Reader) bool {
		io.Copy(io.Discard, req.Body)
		return script(conn, int(seen.Add(1)))
	})
}

// sendThrough sends one request through a router on engine to endpoint and
// describes what the client saw.
func sendThrough(t *testing.T, e engine.Engine, endpoint, method, body string, attempts, headerMs int) string {
	t.Helper()
	rt := New(Options{Engine: e, Events: slog.New(slog.DiscardHandler)})
	defer rt.Close()
	doc := oneUpstreamDoc("v1", endpoint, fmt.Sprintf(`, "retry": {"max_attempts": %d}, "timeouts": {"response_header_ms": %d}`, attempts, headerMs))
	if err := rt.Store().Apply([]byte(doc), snapshot.SourceFile); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	return sendTo(t, srv.URL, method, body)
}

func sendTo(t *testing.T, url, method, body string) string {
	t.Helper()
	var interim []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		interim = append(interim, code)
		return nil
	}}
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), method, url+"/x", rb)
	req.Header.Set("X-Routing-Key", "k")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return "round trip: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var s strings.Builder
	fmt.Fprintf(&s, "%d", resp.StatusCode)
	if v := resp.Header.Get("X-Up"); v != "" {
		fmt.Fprintf(&s, " up=%s", v)
	}
	fmt.Fprintf(&s, " attempts=%s", resp.Header.Get("X-Upstream-Attempts"))
	if resp.Header.Get("Content-Type") == "application/json" {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		fmt.Fprintf(&s, " error=%s", e.Error)
	} else {
		fmt.Fprintf(&s, " body=%q", b)
	}
	if v := resp.Trailer.Get("X-T"); v != "" {
		fmt.Fprintf(&s, " trailer=%s", v)
	}
	if interim != nil {
		fmt.Fprintf(&s, " 1xx=%v", interim)
	}
	if err != nil {
		s.WriteString(" body-error")
	}
	return s.String()
}
