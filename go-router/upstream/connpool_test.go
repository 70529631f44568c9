package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

func TestWriteRequestHeadParsesBack(t *testing.T) {
	for _, method := range []string{"GET", "HEAD", "DELETE", "POST"} {
		req, _ := http.NewRequest(method, "http://up.example/a%2Fb?q=1&r=%20", nil)
		req.RequestURI = "/a%2Fb?q=1&r=%20"
		req.Host = "client.example:8080"
		req.Header = http.Header{"X-Multi": {"1", "2"}, "User-Agent": {""}, "Content-Length": {"99"}}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeRequestHead(w, req); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		back, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("%s: written head does not parse: %v\n%s", method, err, buf.String())
		}
		if back.Method != method || back.RequestURI != req.RequestURI || back.Host != req.Host ||
			len(back.Header["X-Multi"]) != 2 || back.Header.Get("User-Agent") != "" {
			t.Errorf("%s: parsed back as %s %s host %s headers %v", method, back.Method, back.RequestURI, back.Host, back.Header)
		}
		wantCL := int64(0)
		if cl := back.Header.Get("Content-Length"); (method == "POST" || method == "DELETE") != (cl == "0") || back.ContentLength != wantCL {
			t.Errorf("%s: Content-Length %q", method, cl)
		}
	}
	req, _ := http.NewRequest("GET", "http://up/", nil)
	req.Header = http.Header{"X-Bad": {"a\r\nInjected: 1"}}
	if err := writeRequestHead(bufio.NewWriter(io.Discard), req); err == nil {
		t.Error("a value with CR LF was written")
	}
}

// A pooled connection the upstream closed while idle is replaced without
// failing the request.
func TestConnPoolReplacesStaleConnections(t *testing.T) {
	var accepted atomic.Int64
	addr := testkit.Serve(t, func(conn net.Conn) {
		n := accepted.Add(1)
		br := bufio.NewReader(conn)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Conn: %d\r\n\r\nx", n)
			if n == 1 {
				return // the first connection dies after one answer, as if idle-closed
			}
		}
	})
	pool := newConnPool(addr, time.Second, time.Second)
	defer pool.closeIdle()
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.RequestURI = "/"
		resp, err := pool.roundTrip(req, nil)
		if err != nil {
			t.Fatalf("roundTrip: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Conn")
	}
	if c := get(); c != "1" {
		t.Fatalf("first request on connection %s", c)
	}
	time.Sleep(20 * time.Millisecond) // let the close arrive
	if c := get(); c != "2" {
		t.Fatalf("second request on connection %s, want a fresh one", c)
	}
	if c := get(); c != "2" {
		t.Fatalf("third request on connection %s, want connection 2 reused", c)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A request whose client leaves stops waiting for a slow upstream soon
// after, whether it left before or after the first quickAnswer of the
// wait; an answer within that window never needs the watch at all.
func TestConnPoolClientLeavesSlowUpstream(t *testing.T) {
	addr := testkit.ServeRequests(t, func(req *http.Request, conn net.Conn, _ *bufio.Reader) bool {
		if req.URL.Path == "/slow" {
			time.Sleep(3 * time.Second)
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
		return true
	})
	pool := newConnPool(addr, time.Second, 10*time.Second)
	defer pool.closeIdle()
	roundTrip := func(ctx context.Context, path string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
		req.RequestURI = path
		return pool.roundTrip(req, nil)
	}
	if resp, err := roundTrip(context.Background(), "/fast"); err != nil {
		t.Fatalf("fast: %v", err)
	} else {
		resp.Body.Close()
	}
	for _, leaveAfter := range []time.Duration{quickAnswer / 2, 5 * quickAnswer} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(leaveAfter, cancel)
		start := time.Now()
		_, err := roundTrip(ctx, "/slow")
		if took := time.Since(start); err == nil || took > leaveAfter+quickAnswer+500*time.Millisecond {
			t.Errorf("client left after %v: roundTrip returned after %v with %v, want an error soon after", leaveAfter, took, err)
		}
		cancel()
	}
}
