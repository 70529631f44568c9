package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cellbench/go-router/engine"
	"cellbench/go-router/proxy"
	"cellbench/go-router/snapshot"
	"cellbench/go-router/tunedpath"
)

// The stdlib engine is net/http alone: real traffic through it, with every
// placement feature on and covering both request paths of each side
// (bodiless and with a body, plain and unusual heads, interim and streamed
// responses, timeouts), reaches none of the tuned engine's own pieces. The
// same traffic through the tuned engine reaches every one, which shows the
// marks work and this test can fail.
//
// The marks are per process, so the engines run one after the other and
// nothing else in this package may run in parallel with this test.
func TestStdlibEngineRunsNoTunedPiece(t *testing.T) {
	for _, e := range []engine.Engine{engine.Stdlib, engine.Tuned} {
		tunedpath.Reset()
		serveMixedTraffic(t, e)
		for _, piece := range tunedpath.Pieces {
			if got, want := tunedpath.Reached(piece), e == engine.Tuned; got != want {
				t.Errorf("engine %s: %s reached = %v, want %v", e, piece, got, want)
			}
		}
	}
}

func serveMixedTraffic(t *testing.T, e engine.Engine) {
	cell := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		case "/stream":
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
			return
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s read %d", r.Method, r.URL.Path, n)
	}))
	defer cell.Close()

	events := slog.New(slog.DiscardHandler)
	rt := proxy.New(proxy.Options{Engine: e, Events: events})
	defer rt.Close()
	doc := fmt.Sprintf(`{"version": "engine-1", "default_placement": "p", "routes": {},
	  "placements": {"p": {"kind": "shared", "endpoint": %q,
	    "timeouts": {"connect_ms": 500, "response_header_ms": 100},
	    "health_check": {"path": "/health", "interval_ms": 50, "timeout_ms": 40, "unhealthy_threshold": 3, "healthy_threshold": 1},
	    "circuit_breaker": {"failure_threshold": 100, "open_ms": 1000},
	    "rate_limit": {"requests_per_second": 1000, "burst": 1000, "per": "routing_key"},
	    "retry": {"max_attempts": 2}, "concurrency_limit": 100, "max_request_body_bytes": 1048576}}}`, cell.URL)
	if err := rt.Store().Apply([]byte(doc), snapshot.SourceFile); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Wired as run wires it, with the default client-side settings.
	o, err := parseFlags([]string{"--engine", string(e)})
	if err != nil {
		t.Fatal(err)
	}
	base := newHTTPServer(rt, events)
	srv := newProxyServer(o.engine, base)
	go srv.Serve(o.client.protect(base, engineListener(o.engine, ln))) // ends with Shutdown
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	send := func(method, path string, body io.Reader, want int, wantBody string) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, body)
		req.Header.Set("X-Routing-Key", "k")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("engine %s: %s %s: %v", e, method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(string(b), wantBody) || resp.Header.Get("X-Router") != "go" {
			t.Errorf("engine %s: %s %s: %d %q (X-Router %q), want %d with %q", e, method, path, resp.StatusCode, b, resp.Header.Get("X-Router"), want, wantBody)
		}
	}
	for range 3 { // one keep-alive connection on each side
		send("GET", "/plain", nil, 200, "GET /plain read 0")
	}
	send("HEAD", "/plain", nil, 200, "")
	send("GET", "/early", nil, 200, "GET /early")
	send("GET", "/stream", nil, 200, "part 2")
	send("POST", "/upload", strings.NewReader("0123456789"), 200, "POST /upload read 10")
	send("POST", "/chunked", io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")), 200, "read 6")
	send("GET", "/slow", nil, 504, "upstream_timeout")

	// A request net/http must answer on its own (no Host), on a raw socket.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nX-Routing-Key: k\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != 400 {
		t.Errorf("engine %s: request without Host: %v %v, want 400", e, resp, err)
	}

	admin := httptest.NewServer(rt.AdminHandler())
	defer admin.Close()
	for path, want := range map[string]string{
		"/debug/router": fmt.Sprintf(`"engine": %q`, e),
		"/metrics":      fmt.Sprintf(`cellbench_router_info{engine=%q,router="go"} 1`, e),
	} {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("engine %s: admin %s lacks %s", e, path, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("engine %s: Shutdown: %v", e, err)
	}
}

func TestEngineFlag(t *testing.T) {
	for args, want := range map[string]engine.Engine{
		"":                engine.Tuned,
		"--engine stdlib": engine.Stdlib,
		"--engine tuned":  engine.Tuned,
		"--engine go":     "",
	} {
		o, err := parseFlags(strings.Fields(args))
		if want == "" {
			if err == nil {
				t.Errorf("%q: accepted as engine %q", args, o.engine)
			}
			continue
		}
		if err != nil || o.engine != want {
			t.Errorf("%q: engine %q, %v; want %q", args, o.engine, err, want)
		}
	}
}
