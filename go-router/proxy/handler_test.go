package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/go-router/resilience"
)

func oneUpstreamDoc(version, endpoint, extra string) string {
	return fmt.Sprintf(`{"version": %q, "default_placement": "p", "routes": {"k": "p"},
	  "placements": {"p": {"kind": "dedicated", "endpoint": %q %s}}}`, version, endpoint, extra)
}

func TestHandlerForwardsHeaders(t *testing.T) {
	var got http.Header
	var gotHost string
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		got, gotHost = r.Header.Clone(), r.Host
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Request-Id", "upstream-must-not-win")
		w.Header().Set("X-From-Upstream", "1")
		io.WriteString(w, "hello")
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	req, _ := http.NewRequest("GET", "http://client.example/path?q=1", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("X-Routing-Key", "k")
	req.Header.Set("X-Request-Id", "client-id-1")
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	req.Header.Set("Connection", "X-Drop-Me")
	req.Header.Set("X-Drop-Me", "1")
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Upgrade", "websocket")
	rec := &recorder{header: http.Header{}}
	rt.ServeHTTP(rec, req)

	if rec.status != 200 || rec.body.String() != "hello" {
		t.Fatalf("status %d body %q", rec.status, rec.body.String())
	}
	for name, want := range map[string]string{
		"X-Request-Id": "client-id-1", "X-Forwarded-For": "198.51.100.1, 192.0.2.7",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": "client.example", "Via": "1.1 cellbench",
		"Te": "trailers", "X-Drop-Me": "", "Proxy-Authorization": "", "Upgrade": "", "Connection": "",
		"User-Agent": "",
	} {
		if v := got.Get(name); v != want {
			t.Errorf("upstream %s = %q, want %q", name, v, want)
		}
	}
	if gotHost != "client.example" {
		t.Errorf("upstream Host %q, want the client's", gotHost)
	}
	h := rec.header
	for name, want := range map[string]string{
		"X-Request-Id": "client-id-1", "X-Routed-To": "p", "X-Route-Reason": "dedicated",
		"X-Circuit-State": "closed", "X-Config-Version": "v1", "X-Upstream-Attempts": "1",
		"X-Router": "go", "X-Failover-Reason": "", "Keep-Alive": "", "X-From-Upstream": "1",
	} {
		if v := h.Get(name); v != want {
			t.Errorf("client %s = %q, want %q", name, v, want)
		}
	}
	if st := h.Get("Server-Timing"); !strings.HasPrefix(st, "upstream;dur=") {
		t.Errorf("Server-Timing %q", st)
	}
}

func TestHandlerRequestIDs(t *testing.T) {
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Id", r.Header.Get("X-Request-Id"))
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	for _, id := range []string{"", "has space", strings.Repeat("a", 129), "tab\tin"} {
		req, _ := http.NewRequest("GET", "http://h/", nil)
		req.Header.Set("X-Routing-Key", "k")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		rec := &recorder{header: http.Header{}}
		rt.ServeHTTP(rec, req)
		gen := rec.header.Get("X-Request-Id")
		if gen == "" || gen == id || rec.header.Get("X-Seen-Id") != gen {
			t.Errorf("client id %q: response id %q, upstream saw %q", id, gen, rec.header.Get("X-Seen-Id"))
		}
	}
}

func TestHandlerRouterErrors(t *testing.T) {
	var calls atomic.Int64
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("slow") != "" {
			time.Sleep(300 * time.Millisecond)
		}
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint,
		`, "max_request_body_bytes": 10, "timeouts": {"response_header_ms": 100},
		   "rate_limit": {"requests_per_second": 0.001, "burst": 5, "per": "routing_key"}`))

	rec := serve(rt, "GET", "/", "", nil)
	if rec.Code != 400 || errorCode(t, rec) != "missing_routing_key" || rec.Header().Get("X-Routed-To") != "" {
		t.Errorf("no key: %d %s", rec.Code, rec.Body)
	}
	rec = serve(rt, "POST", "/", "k", strings.NewReader(strings.Repeat("x", 11)))
	if rec.Code != 413 || errorCode(t, rec) != "body_too_large" {
		t.Errorf("Content-Length over limit: %d %s", rec.Code, rec.Body)
	}
	// A body of unknown length is counted as it streams.
	rec = serve(rt, "POST", "/", "k", io.MultiReader(strings.NewReader(strings.Repeat("x", 8)), strings.NewReader(strings.Repeat("y", 8))))
	if rec.Code != 413 || errorCode(t, rec) != "body_too_large" {
		t.Errorf("chunked over limit: %d %s", rec.Code, rec.Body)
	}
	rec = serve(rt, "GET", "/?slow=1", "k", nil)
	if rec.Code != 504 || errorCode(t, rec) != "upstream_timeout" || rec.Header().Get("X-Upstream-Attempts") != "1" {
		t.Errorf("slow upstream: %d %s", rec.Code, rec.Body)
	}
	before := calls.Load()
	// Every routed request takes a token, whatever happens to it later:
	// three so far, two left of the burst of five.
	for range 2 {
		if rec = serve(rt, "GET", "/", "k", nil); rec.Code != 200 {
			t.Errorf("within burst: %d", rec.Code)
		}
	}
	rec = serve(rt, "GET", "/", "k", nil)
	if rec.Code != 429 || errorCode(t, rec) != "rate_limited" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("over rate: %d %s Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if n := calls.Load() - before; n != 2 {
		t.Errorf("upstream saw %d of the last three requests, want 2", n)
	}
}

func TestHandlerConnectFailureAndFailover(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cell", "backup")
	})
	rt, events := newTestRouter(t, fmt.Sprintf(`{"version": "v", "default_placement": "backup", "routes": {"k": "down"},
	  "placements": {
	    "down": {"kind": "shared", "endpoint": %q, "retry": {"max_attempts": 3},
	             "circuit_breaker": {"failure_threshold": 3, "open_ms": 60000}},
	    "backup": {"kind": "shared", "endpoint": %q}}}`, refused, endpoint))

	rec := serve(rt, "POST", "/", "k", strings.NewReader("body"))
	if rec.Code != 502 || errorCode(t, rec) != "upstream_connect_error" || rec.Header().Get("X-Upstream-Attempts") != "3" {
		t.Fatalf("connect failure: %d %s attempts %q", rec.Code, rec.Body, rec.Header().Get("X-Upstream-Attempts"))
	}
	if !events.has("circuit_changed", map[string]string{"placement": "down", "from": "closed", "to": "open"}) {
		t.Error("no circuit_changed event")
	}
	rec = serve(rt, "GET", "/", "k", nil)
	h := rec.Header()
	if rec.Code != 200 || h.Get("X-Cell") != "backup" || h.Get("X-Routed-To") != "backup" || h.Get("X-Failover-Reason") != "circuit_open" {
		t.Fatalf("failover: %d %v", rec.Code, h)
	}
}

func TestHandlerStreamsChunkedResponses(t *testing.T) {
	release := make(chan struct{})
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second")
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	srv := &http.Server{Handler: rt}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("X-Routing-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first chunk not delivered before the upstream finished: %q %v", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
}

// recorder is a minimal ResponseWriter (httptest.ResponseRecorder hides
// the distinction between header map and written header).
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(p)
}

type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "partial"), nil
	}
	return 0, fmt.Errorf("malformed chunk")
}

func TestHandlerBrokenClientBodyIsTheClientsError(t *testing.T) {
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, `, "circuit_breaker": {"failure_threshold": 1, "open_ms": 60000}`))
	rec := serve(rt, "POST", "/", "k", &failingReader{})
	if rec.Code != 400 || errorCode(t, rec) != "bad_request" {
		t.Fatalf("broken client body: %d %s", rec.Code, rec.Body)
	}
	if st := rt.Store().Current().Placements[0].CircuitState(); st != resilience.Closed {
		t.Fatalf("a client's broken body counted against the upstream: breaker %s", st)
	}
}

func TestHandlerForwardsEarlyHints(t *testing.T) {
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	srv := &http.Server{Handler: rt}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	for _, body := range []io.Reader{nil, strings.NewReader("with a body")} { // pooled and Transport paths
		var hints []int
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if h.Get("Link") == "" {
				t.Errorf("1xx without the upstream's Link header")
			}
			hints = append(hints, code)
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+ln.Addr().String()+"/", body)
		req.Header.Set("X-Routing-Key", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(hints) != 1 || hints[0] != 103 || resp.StatusCode != 200 || string(b) != "final" || resp.Header.Get("Link") != "" {
			t.Errorf("body %v: hints %v, final %d %q Link %q", body != nil, hints, resp.StatusCode, b, resp.Header.Get("Link"))
		}
	}
}

func TestHandlerConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, `, "concurrency_limit": 2`))
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- serve(rt, "GET", "/", "k", nil).Code }()
	}
	<-arrived
	<-arrived
	rec := serve(rt, "GET", "/", "k", nil)
	if rec.Code != 503 || errorCode(t, rec) != "concurrency_limited" || rec.Header().Get("Retry-After") != "1" ||
		rec.Header().Get("X-Routed-To") != "p" || rec.Header().Get("X-Upstream-Attempts") != "" {
		t.Errorf("third request: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	close(release)
	for range 2 {
		if code := <-done; code != 200 {
			t.Errorf("request within the limit: %d", code)
		}
	}
	if rec := serve(rt, "GET", "/", "k", nil); rec.Code != 200 {
		t.Errorf("after the others finished: %d", rec.Code)
	}
}

func TestHandlerRefusesConnect(t *testing.T) {
	var calls atomic.Int64
	endpoint := upstreamFunc(t, func(http.ResponseWriter, *http.Request) { calls.Add(1) })
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	req := httptest.NewRequest("CONNECT", "http://cell.example:443", nil)
	req.Header.Set("X-Routing-Key", "k")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	if rec.Code != 501 || errorCode(t, rec) != "method_not_supported" || calls.Load() != 0 {
		t.Fatalf("CONNECT: %d %s, upstream saw %d", rec.Code, rec.Body, calls.Load())
	}
}

// A chunked request closes its connection after the response even when
// the upstream sent a 1xx first.
func TestHandlerChunkedRequestClosesAfterInterim(t *testing.T) {
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	srv := &http.Server{Handler: rt}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: k\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	all, _ := io.ReadAll(conn) // ends only if the router closes the connection
	if !strings.Contains(string(all), "103 Early Hints") || !strings.Contains(string(all), "final") {
		t.Fatalf("response %q", all)
	}
	if !strings.Contains(string(all), "Connection: close") {
		t.Fatalf("final response without Connection: close:\n%s", all)
	}
}
