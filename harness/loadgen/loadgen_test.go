package loadgen

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

func cellServer(t *testing.T) *httptest.Server {
	t.Helper()
	return cellServerWith(t, nil)
}

// cellServerWith starts the test cell, calling connState (if set) on
// every connection state change.
func cellServerWith(t *testing.T, connState func(net.Conn, http.ConnState)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Routed-To", "eu1")
		w.Header().Set("X-Config-Version", "v7")
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part one,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		default:
			io.Copy(io.Discard, r.Body)
			w.Write([]byte("ok"))
		}
	}))
	srv.Config.ConnState = connState
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func requestsFor(addr string, paths ...string) []Request {
	var out []Request
	for i, p := range paths {
		out = append(out, Request{Addr: addr, Target: i,
			Wire: Encode("GET", addr, p, [][2]string{{"X-Routing-Key", "acme"}}, nil)})
	}
	return out
}

func TestOpenLoopSendsEveryRequestOnSchedule(t *testing.T) {
	srv := cellServer(t)
	addr := srv.Listener.Addr().String()
	res, err := Attack(Plan{Requests: requestsFor(addr, "/a", "/chunked", "/close", "/teapot"),
		Rate: 2000, Duration: 500 * time.Millisecond, Conns: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1000 {
		t.Fatalf("%d results, want 1000 (2000/s for 500 ms)", len(res))
	}
	for i, r := range res {
		if r.Due != time.Duration(i)*500*time.Microsecond {
			t.Fatalf("result %d due at %v, want %v", i, r.Due, time.Duration(i)*500*time.Microsecond)
		}
		if r.Err != "" {
			t.Fatalf("result %d: %s", i, r.Err)
		}
		want := uint16(200)
		if r.Target == 3 {
			want = 418
		}
		if r.Code != want || r.Target != i%4 || r.Served != "eu1" || r.Version != "v7" {
			t.Fatalf("result %d: %+v", i, r)
		}
		if r.Sent < r.Due || r.Done < r.Sent || r.Latency() <= 0 {
			t.Fatalf("result %d: times out of order: %+v", i, r)
		}
	}
}

func TestClosedLoopKeepsConnectionsBusy(t *testing.T) {
	srv := cellServer(t)
	addr := srv.Listener.Addr().String()
	res, err := Attack(Plan{Requests: requestsFor(addr, "/a"), Duration: 200 * time.Millisecond, Conns: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 10 {
		t.Fatalf("only %d requests in 200 ms of closed loop", len(res))
	}
	for i, r := range res {
		if r.Code != 200 || (i > 0 && r.Due < res[i-1].Due) || r.Due != r.Sent {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
}

// A server that closes every keep-alive connection after one response:
// the next request on it fails before any byte, and is retried once on a
// new connection instead of counting as an error.
func TestStaleKeepAliveConnectionIsRetried(t *testing.T) {
	var accepted atomic.Int32
	addr := testkit.ServeRequests(t, func(_ *http.Request, c net.Conn, _ *bufio.Reader) bool {
		accepted.Add(1) // one request per connection
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false
	})
	res, err := Attack(Plan{Requests: requestsFor(addr, "/a"), Rate: 100, Duration: 100 * time.Millisecond, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Code != 200 {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if int(accepted.Load()) < len(res) {
		t.Fatalf("%d connections for %d requests: the server closed each one", accepted.Load(), len(res))
	}
}

func TestTransportErrorsAreResults(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every connect is refused
	res, err := Attack(Plan{Requests: requestsFor(addr, "/a"), Rate: 100, Duration: 50 * time.Millisecond, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Code != 0 || !strings.Contains(r.Err, "refused") {
			t.Fatalf("want connection refused, got %+v", r)
		}
	}
}

func TestMalformedResponsesAreErrors(t *testing.T) {
	for name, answer := range map[string]string{
		"bad status line":    "HTTX/1.1 200 OK\r\n\r\n",
		"bad content-length": "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
		"bad chunk size":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"short body":         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	} {
		t.Run(name, func(t *testing.T) {
			addr := testkit.ServeRequests(t, func(_ *http.Request, c net.Conn, _ *bufio.Reader) bool {
				io.WriteString(c, answer)
				return false
			})
			res, _ := Attack(Plan{Requests: requestsFor(addr, "/"), Rate: 50, Duration: 40 * time.Millisecond,
				Conns: 1, Timeout: time.Second})
			for _, r := range res {
				if r.Err == "" {
					t.Fatalf("%q accepted: %+v", answer, r)
				}
			}
		})
	}
}

// A generator starved of CPU sends late, and says so in GeneratorLag: one
// P, and a goroutine that never blocks, so the pacer and the connection
// workers get the processor only when the scheduler preempts the hog.
func TestStarvedGeneratorReportsLateSends(t *testing.T) {
	srv := cellServer(t)
	addr := srv.Listener.Addr().String()
	restore := testkit.StarveScheduler()
	res, err := Attack(Plan{Requests: requestsFor(addr, "/a"), Rate: 2000, Duration: 300 * time.Millisecond, Conns: 8})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	late := 0
	for _, r := range res {
		if r.GeneratorLag > time.Millisecond {
			late++
		}
	}
	if late*100 <= len(res) {
		t.Fatalf("%d of %d sends more than 1 ms late under starvation; want over 1 %%", late, len(res))
	}
}

func TestEncode(t *testing.T) {
	got := string(Encode("POST", "h:1", "/p?q=1", [][2]string{{"X-Routing-Key", "acme"}}, []byte("abc")))
	want := "POST /p?q=1 HTTP/1.1\r\nHost: h:1\r\nX-Routing-Key: acme\r\nContent-Length: 3\r\n\r\nabc"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(got))); err != nil {
		t.Fatalf("net/http does not read it: %v", err)
	}
}

func TestPlanValidation(t *testing.T) {
	for _, p := range []Plan{{}, {Requests: requestsFor("x:1", "/"), Duration: time.Second}, {Requests: requestsFor("x:1", "/"), Conns: 1}} {
		if _, err := Attack(p); err == nil {
			t.Fatalf("plan %+v accepted", p)
		}
	}
}

// A pool carries its connections from one attack to the next.
func TestPoolKeepsConnectionsAcrossAttacks(t *testing.T) {
	var conns atomic.Int32
	srv := cellServerWith(t, func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	})
	addr := srv.Listener.Addr().String()
	pool := NewPool(time.Second)
	defer pool.Close()
	for i := 0; i < 3; i++ {
		if _, err := Attack(Plan{Requests: requestsFor(addr, "/a"), Rate: 200, Duration: 50 * time.Millisecond, Conns: 2, Pool: pool}); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Fatalf("%d connections for three attacks on a pool of two", n)
	}
}

// The shares of a plan, started on one clock, are exactly the whole
// plan's schedule: every due time once, with the whole plan's request
// shape at each.
func TestSharesMakeTheWholeSchedule(t *testing.T) {
	srv := cellServer(t)
	addr := srv.Listener.Addr().String()
	reqs := requestsFor(addr, "/a", "/b", "/c")
	// 7 shares of 1000 req/s for 503 ms: 503 requests, uneven shares.
	const of, want = 7, 503
	start := time.Now().Add(200 * time.Millisecond)
	got := make([][]Result, of)
	errs := make(chan error, of)
	for i := range of {
		go func() {
			var err error
			got[i], err = Attack(Plan{Requests: reqs, Rate: 1000, Duration: 503 * time.Millisecond, Conns: 2,
				Share: Share{Index: i, Of: of}, Start: start})
			errs <- err
		}()
	}
	for range of {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	due := map[time.Duration]int{}
	for i, share := range got {
		if len(share) != (want-i+of-1)/of {
			t.Fatalf("share %d: %d results", i, len(share))
		}
		for _, r := range share {
			due[r.Due]++
			k := int(r.Due / time.Millisecond)
			if r.Due%time.Millisecond != 0 || k%of != i || r.Target != k%len(reqs) || r.Err != "" || r.Code != 200 {
				t.Fatalf("share %d: %+v", i, r)
			}
		}
	}
	if len(due) != want {
		t.Fatalf("%d distinct due times, want %d", len(due), want)
	}
	for d, n := range due {
		if n != 1 || d >= want*time.Millisecond {
			t.Fatalf("due %v sent %d times", d, n)
		}
	}
}

func TestShareValidation(t *testing.T) {
	reqs := requestsFor("x:1", "/")
	for _, sh := range []Share{{Index: -1, Of: 2}, {Index: 2, Of: 2}, {Index: 1, Of: 0}} {
		if _, err := Attack(Plan{Requests: reqs, Rate: 10, Duration: time.Second, Conns: 1, Share: sh}); err == nil {
			t.Errorf("share %+v accepted", sh)
		}
	}
	if _, err := Attack(Plan{Requests: reqs, Duration: time.Second, Conns: 1, Share: Share{Index: 0, Of: 2}}); err == nil {
		t.Error("a shared closed loop accepted")
	}
}
