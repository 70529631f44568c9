package parity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cellbench/internal/slowclient"
	"cellbench/internal/testkit"
)

// Contract §5 "Client connections": under a slow-head attack with more
// connections than the router has descriptors, a well-behaved keep-alive
// client keeps being served. Not parallel: the attack's numbers are only
// meaningful on a machine the other tests are not loading meanwhile (the
// parallel tests wait until the sequential ones are done).
func TestSlowHeadAttack(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is needed to lower the router's descriptor limit")
	}
	const (
		nofile      = 1024 // the router's RLIMIT_NOFILE: a cap of (1024-64)/2 = 480
		attackConns = 2000 // more than the router could hold descriptors for
		ramp        = 2 * time.Second
		measure     = 10 * time.Second
	)
	c := startCells(t, "a")
	r := startRouterVia(t, []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"},
		configDoc("slow-head-1", "a", nil, doc{"a": placement("shared", c.endpoint("a"), nil)}),
		"--access-log", "off")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stats slowclient.Stats
	attackDone := make(chan struct{})
	go func() {
		defer close(attackDone)
		slowclient.Attack(ctx, slowclient.Options{Addr: r.listen, Conns: attackConns, ByteInterval: time.Second}, &stats)
	}()
	defer func() { stop(); <-attackDone }()

	// The well-behaved client starts once the attack holds more
	// connections than the router has descriptors, and needs a new
	// connection every 25 requests (0.5 s): a client whose one connection
	// predates the attack would pass even without any protection.
	header := http.Header{"X-Routing-Key": {"good"}}
	if !sleepCtx(ctx, ramp) {
		t.Fatal("attack ended early")
	}
	probeCtx, probeStop := context.WithTimeout(context.Background(), measure)
	defer probeStop()
	var peak int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for probeCtx.Err() == nil {
			peak = max(peak, stats.Snapshot().Open)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	res := slowclient.Probe(probeCtx, slowclient.ProbeOptions{
		URL: r.base + "/", Header: header, Interval: 20 * time.Millisecond,
		RequestTimeout: 2 * time.Second, ReconnectEvery: 25,
	})
	<-sampled
	s := stats.Snapshot()
	t.Logf("%s router %v, RLIMIT_NOFILE %d: well-behaved client %d/%d answered (%.2f %%), longest outage %v; attack: %d dials (%d failed), %d connections closed by the router, %d open at most",
		routerName, routerArgs, nofile, res.Answered, res.Sent, 100*res.SuccessRate(), res.LongestOutage.Round(time.Millisecond), s.Dials, s.DialErrors, s.ClosedByServer, peak)
	if res.Sent == 0 {
		t.Fatalf("the probe sent no request in %v", measure)
	}
	if res.SuccessRate() < 0.99 {
		t.Errorf("%.2f %% of the well-behaved client's requests answered, want >= 99 %%; first failures: %v", 100*res.SuccessRate(), res.Failures)
	}
	if res.LongestOutage > 2*time.Second {
		t.Errorf("longest outage %v, want <= 2s; first failures: %v", res.LongestOutage, res.Failures)
	}
	if s.ClosedByServer == 0 {
		t.Errorf("the router closed none of the %d slow connections", attackConns)
	}
	if r.proc.Exited() {
		t.Fatalf("the router exited under the attack")
	}
}

// Contract §5: the head, idle and body idle timeouts, and the connection
// cap with its shedding order.
func TestClientTimeouts(t *testing.T) {
	t.Parallel()
	const (
		headMs     = 600
		idleMs     = 900
		bodyIdleMs = 500
	)
	c := startCells(t, "a")
	r := startRouter(t, configDoc("client-1", "a", nil, doc{"a": placement("shared", c.endpoint("a"), nil)}),
		"--client-head-timeout-ms", itoa(headMs), "--client-idle-timeout-ms", itoa(idleMs),
		"--client-body-idle-timeout-ms", itoa(bodyIdleMs))
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	const slack = 700 * time.Millisecond
	okHead := "GET / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: k\r\n\r\n"

	t.Run("a head sent byte by byte is cut at the head timeout", func(t *testing.T) {
		conn := dial(t, r.listen)
		start := time.Now()
		got, took := trickleUntilClosed(conn, "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: 1\r\n", 100*time.Millisecond)
		if took < ms(headMs)-50*time.Millisecond || took > ms(headMs)+slack {
			t.Errorf("closed %v after the accept, want about %dms", took, headMs)
		}
		if got != "" {
			t.Errorf("a cut head gets no answer (the connection just closes), got %q", got)
		}
		_ = start
	})

	t.Run("a connection that sends nothing is closed at the head timeout", func(t *testing.T) {
		conn := dial(t, r.listen)
		got, took := waitClosed(conn, 5*time.Second)
		if took < ms(headMs)-50*time.Millisecond || took > ms(headMs)+slack || got != "" {
			t.Errorf("closed after %v with %q, want about %dms and nothing", took, got, headMs)
		}
	})

	t.Run("an idle kept-alive connection is closed at the idle timeout", func(t *testing.T) {
		conn := dial(t, r.listen)
		br := bufio.NewReader(conn)
		io.WriteString(conn, okHead)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		got, took := waitClosed(conn, 5*time.Second)
		// idle > head: the idle timeout, not the head timeout, applies
		// before the next head's first byte.
		if took < ms(idleMs)-50*time.Millisecond || took > ms(idleMs)+slack || got != "" {
			t.Errorf("closed %v after the response with %q, want about %dms and nothing", took, got, idleMs)
		}
	})

	t.Run("a later head is bounded from its first byte", func(t *testing.T) {
		conn := dial(t, r.listen)
		br := bufio.NewReader(conn)
		io.WriteString(conn, okHead)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		time.Sleep(ms(idleMs / 2)) // within the idle timeout
		got, took := trickleUntilClosed(conn, "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: 1\r\n", 100*time.Millisecond)
		if took < ms(headMs)-50*time.Millisecond || took > ms(headMs)+slack || got != "" {
			t.Errorf("closed %v after the head's first byte with %q, want about %dms and nothing", took, got, headMs)
		}
	})

	t.Run("a long head is bounded from the accept whatever parses it", func(t *testing.T) {
		// Over 8 KiB: the Go router's fast path hands it to net/http at
		// ~500 ms; the deadline stays the accept's (not 500 ms + 600 ms).
		conn := dial(t, r.listen)
		start := time.Now()
		field := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n"+strings.Repeat(field, 4))
		time.Sleep(500 * time.Millisecond)
		io.WriteString(conn, strings.Repeat(field, 5))
		got, _ := trickleUntilClosed(conn, "X-Slow: 1\r\n", 50*time.Millisecond)
		took := time.Since(start)
		if took < ms(headMs)-50*time.Millisecond || took > ms(headMs)+300*time.Millisecond || got != "" {
			t.Errorf("closed %v after the accept with %q, want about %dms and nothing", took, got, headMs)
		}
	})

	t.Run("a slow but steady head within the timeout is served", func(t *testing.T) {
		conn := dial(t, r.listen)
		// ~45 bytes, 8 ms apart: ~360 ms, under the 600 ms head timeout.
		for i := 0; i < len(okHead); i++ {
			if _, err := conn.Write([]byte{okHead[i]}); err != nil {
				t.Fatalf("write: %v", err)
			}
			time.Sleep(8 * time.Millisecond)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("want 200, got %v %v", resp, err)
		}
	})

	t.Run("a stalled request body is 408 request_timeout", func(t *testing.T) {
		conn := dial(t, r.listen)
		io.WriteString(conn, "POST /up HTTP/1.1\r\nHost: h\r\nX-Routing-Key: k\r\nContent-Length: 100\r\n\r\n0123456789")
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("no answer after %v: %v", took, err)
		}
		body, _ := io.ReadAll(resp.Body)
		rp := reply{status: resp.StatusCode, header: resp.Header, body: body}
		wantRouterError(t, rp, http.StatusRequestTimeout, "request_timeout")
		if !resp.Close { // ReadResponse takes "Connection: close" out of the header
			t.Errorf("no Connection: close on the 408")
		}
		if took < ms(bodyIdleMs)-50*time.Millisecond || took > ms(bodyIdleMs)+slack {
			t.Errorf("408 after %v, want about %dms", took, bodyIdleMs)
		}
	})

	t.Run("a slow but steady request body passes", func(t *testing.T) {
		// 5 pieces 250 ms apart: 1 s in all, each pause under the 500 ms.
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 5; i++ {
				time.Sleep(250 * time.Millisecond)
				pw.Write(pattern(20))
			}
			pw.Close()
		}()
		rp := r.do(t, req{method: http.MethodPost, path: "/up", key: "k", body: pr, size: 100})
		wantServed(t, rp, "a", "default", "")
		if e := rp.echo(t); e.BodyBytes != 100 {
			t.Errorf("cell got %d body bytes, want 100", e.BodyBytes)
		}
	})
}

// Contract §5: at --max-client-connections the oldest waiting connection
// is shed for a newcomer; with every connection busy, the newcomer goes.
func TestClientConnectionCap(t *testing.T) {
	t.Parallel()
	const maxConns = 4
	c := startCells(t, "a")
	r := startRouter(t, configDoc("cap-1", "a", nil, doc{"a": placement("shared", c.endpoint("a"), nil)}),
		"--max-client-connections", itoa(maxConns))

	t.Run("the oldest waiting connection is shed for a newcomer", func(t *testing.T) {
		var idle []net.Conn
		for range maxConns {
			idle = append(idle, dial(t, r.listen))
			time.Sleep(30 * time.Millisecond) // a clear age order
		}
		time.Sleep(100 * time.Millisecond) // all accepted
		rp := r.get(t, "/", "k")           // a fifth connection
		wantServed(t, rp, "a", "default", "")
		if _, took := waitClosed(idle[0], 2*time.Second); took >= 2*time.Second {
			t.Errorf("the oldest idle connection was not shed")
		}
		for _, c := range idle[1:] {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
				t.Errorf("a younger idle connection was shed too early: %v", err)
			}
		}
		for _, c := range idle {
			c.Close()
		}
		m := r.metrics(t)
		if v := m.value(t, "cellbench_client_connections_dropped_total", labels{"reason": "shed"}); v < 1 {
			t.Errorf("cellbench_client_connections_dropped_total{reason=shed} = %v, want >= 1", v)
		}
		if v := m.value(t, "cellbench_client_connections_dropped_total", labels{"reason": "refused"}); v != 0 {
			t.Errorf("cellbench_client_connections_dropped_total{reason=refused} = %v before any refusal, want 0", v)
		}
	})

	t.Run("with every connection busy the newcomer is refused", func(t *testing.T) {
		time.Sleep(200 * time.Millisecond) // the previous case's connections are gone
		var wg sync.WaitGroup
		results := make([]string, maxConns)
		for i := range maxConns {
			conn := dial(t, r.listen)
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.WriteString(conn, "GET /?delay_ms=1500 HTTP/1.1\r\nHost: h\r\nX-Routing-Key: k\r\n\r\n")
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					results[i] = err.Error()
					return
				}
				results[i] = resp.Status
			}()
		}
		time.Sleep(500 * time.Millisecond) // all four requests under way
		conn := dial(t, r.listen)
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: k\r\n\r\n")
		got, took := waitClosed(conn, 3*time.Second)
		if got != "" || took > 500*time.Millisecond {
			t.Errorf("the newcomer got %q after %v; want the connection closed at once without an answer", got, took)
		}
		m := r.metrics(t) // an admin connection: not a client one
		if v := m.value(t, "cellbench_client_connections", nil); v != maxConns {
			t.Errorf("cellbench_client_connections = %v with %d requests under way, want %d", v, maxConns, maxConns)
		}
		wg.Wait()
		for i, s := range results {
			if s != "200 OK" {
				t.Errorf("busy connection %d: %s, want 200 OK (a busy connection is never shed)", i, s)
			}
		}
		if v := r.metrics(t).value(t, "cellbench_client_connections_dropped_total", labels{"reason": "refused"}); v < 1 {
			t.Errorf("cellbench_client_connections_dropped_total{reason=refused} = %v, want >= 1", v)
		}
	})
}

// Contract §5: at the cap, connections are shed no faster than
// --client-shed-rate (here 4 a second, one at a time: the cap of 2 sheds
// batches of 1); newcomers wait meanwhile and all get in. Without the pace
// all eight sheds would come within milliseconds.
func TestClientShedRate(t *testing.T) {
	t.Parallel()
	const (
		maxConns   = 2
		shedRate   = 4
		newcomers  = 8
		interval   = time.Second / shedRate
		allShedBy  = 4 * time.Second
		firstConns = maxConns
	)
	c := startCells(t, "a")
	r := startRouter(t, configDoc("shed-rate-1", "a", nil, doc{"a": placement("shared", c.endpoint("a"), nil)}),
		"--max-client-connections", itoa(maxConns), "--client-shed-rate", itoa(shedRate))

	var conns []net.Conn
	for range firstConns {
		conns = append(conns, dial(t, r.listen))
		time.Sleep(30 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // both accepted: the listener is at its cap
	for range newcomers {
		conns = append(conns, dial(t, r.listen)) // waits in the backlog if need be
	}
	closedAt := make([]time.Duration, len(conns))
	start := time.Now()
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, took := waitClosed(conn, allShedBy); took < allShedBy {
				closedAt[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	var shed []time.Duration
	for _, at := range closedAt {
		if at > 0 {
			shed = append(shed, at)
		}
	}
	slices.Sort(shed)
	if len(shed) != newcomers {
		t.Fatalf("%d connections shed in %v, want %d (one per newcomer; the last %d stay): closed at %v", len(shed), allShedBy, newcomers, maxConns, shed)
	}
	// Eight sheds at 4 a second, the first at once: 7 intervals. Slowness
	// only spreads them further, so the bound is on the low side, with
	// room for timer jitter.
	if spread, want := shed[len(shed)-1]-shed[0], (newcomers-1)*interval*3/4; spread < want {
		t.Errorf("the %d sheds spread over %v, want >= %v at %d a second: closed at %v", newcomers, spread, want, shedRate, shed)
	}
	if v := r.metrics(t).value(t, "cellbench_client_connections_dropped_total", labels{"reason": "shed"}); v != newcomers {
		t.Errorf("cellbench_client_connections_dropped_total{reason=shed} = %v, want %d", v, newcomers)
	}
}

// Contract §2 rule 7: response_header_ms bounds the upstream response head
// only; response_body_idle_ms bounds each wait for more of its body.
func TestResponseBodyTimeouts(t *testing.T) {
	t.Parallel()
	c := startCells(t, "a", "b")
	trickleHead := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		// The head in pieces 150 ms apart: each piece within every timeout,
		// the whole head (~750 ms) over response_header_ms.
		io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
		for range 5 {
			time.Sleep(150 * time.Millisecond)
			io.WriteString(conn, "X-Piece: 1\r\n")
		}
		io.WriteString(conn, "Content-Length: 2\r\n\r\nok")
		return false
	})
	r := startRouter(t, configDoc("body-idle-1", "a", map[string]string{"kb": "b", "kt": "t"}, doc{
		"a": placement("shared", c.endpoint("a"), doc{"timeouts": doc{"response_header_ms": 300, "response_body_idle_ms": 1000}}),
		// body idle below the header timeout: see the last case.
		"b": placement("shared", c.endpoint("b"), doc{"timeouts": doc{"response_header_ms": 2000, "response_body_idle_ms": 300}}),
		"t": placement("shared", trickleHead.endpoint(), doc{"timeouts": doc{"response_header_ms": 300, "response_body_idle_ms": 1000}}),
	}))

	get := func(t *testing.T, path, key string) (resp *http.Response, body []byte, firstAt, endAt time.Duration, bodyErr error) {
		t.Helper()
		hr, _ := http.NewRequest(http.MethodGet, r.base+path, nil)
		hr.Header.Set("X-Routing-Key", key)
		start := time.Now()
		resp, err := r.http.Do(hr)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 && body == nil {
				firstAt = time.Since(start)
			}
			body = append(body, buf[:n]...)
			if err != nil {
				if err != io.EOF {
					bodyErr = err
				}
				break
			}
		}
		return resp, body, firstAt, time.Since(start), bodyErr
	}

	t.Run("chunks further apart than the header timeout arrive whole", func(t *testing.T) {
		resp, body, _, took, err := get(t, "/?size=4000&chunks=4&chunk_delay_ms=700", "k")
		if resp.StatusCode != 200 || err != nil || len(body) != 4000 {
			t.Fatalf("status %d, %d bytes, error %v after %v; want 200 and all 4000 bytes", resp.StatusCode, len(body), err, took)
		}
	})

	t.Run("a body stalled past the body idle timeout is cut", func(t *testing.T) {
		resp, body, firstAt, endAt, err := get(t, "/?size=4000&chunks=2&chunk_delay_ms=3000", "k")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200 (the head came in time)", resp.StatusCode)
		}
		// The only signal left once the status is out: the connection ends
		// before the body does (no last chunk), so the client sees an error.
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("body ended with %v after %d bytes, want an unexpected EOF (cut, not passed off as complete)", err, len(body))
		}
		if len(body) != 2000 {
			t.Errorf("%d bytes before the cut, want the first chunk's 2000", len(body))
		}
		if cut := endAt - firstAt; cut < 900*time.Millisecond || cut > 1800*time.Millisecond {
			t.Errorf("cut %v after the first chunk, want about the 1000ms body idle timeout", cut)
		}
		line := r.accessLineFor(t, resp.Header.Get("X-Request-Id"))
		if line["status"] != float64(200) || line["error"] != "upstream_timeout" {
			t.Errorf("access log status %v error %v, want 200 and upstream_timeout", line["status"], line["error"])
		}
	})

	t.Run("a head in pieces is bounded as a whole by the header timeout", func(t *testing.T) {
		start := time.Now()
		rp := r.get(t, "/", "kt")
		took := time.Since(start)
		wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		if took < 250*time.Millisecond || took > 700*time.Millisecond {
			t.Errorf("504 after %v, want about 300ms (the whole head's deadline, not one read's)", took)
		}
	})

	t.Run("a header timeout on a pooled connection is one timeout, not a replay", func(t *testing.T) {
		wantServed(t, r.get(t, "/", "k"), "a", "default", "") // leaves a pooled connection
		before := c.counters(t, "a").Requests
		start := time.Now()
		rp := r.get(t, "/?delay_ms=2000", "k")
		took := time.Since(start)
		wantRouterError(t, rp, http.StatusGatewayTimeout, "upstream_timeout")
		wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "1"})
		if took > 800*time.Millisecond {
			t.Errorf("504 after %v, want about the 300ms header timeout", took)
		}
		if n := c.counters(t, "a").Requests - before; n != 1 {
			t.Errorf("the cell saw %d requests, want 1 (a timeout is not replayed as a stale connection)", n)
		}
	})

	t.Run("a body idle timeout below the header timeout", func(t *testing.T) {
		resp, body, firstAt, endAt, err := get(t, "/?size=4000&chunks=2&chunk_delay_ms=3000", "kb")
		cut := endAt - firstAt
		if resp.StatusCode != 200 || err == nil || len(body) != 2000 {
			t.Fatalf("status %d, %d bytes, error %v; want 200, the first 2000 bytes, then a cut", resp.StatusCode, len(body), err)
		}
		want, what := 300*time.Millisecond, "the 300ms body idle timeout"
		if routerName == "pingora" {
			// docs/parity.md#pingora-body-idle-below-header
			want, what = 2000*time.Millisecond, "the 2000ms header timeout (documented divergence: Pingora's one per-read timeout is the larger of the two)"
			t.Logf("documented divergence: pingora %s: cut after the header timeout instead of the body idle timeout", t.Name())
		}
		if cut < want-100*time.Millisecond || cut > want+800*time.Millisecond {
			t.Errorf("cut %v after the first chunk, want about %s", cut, what)
		}
	})
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitClosed reads until the peer closes (or max passes) and returns what
// came and how long it took.
func waitClosed(conn net.Conn, maxWait time.Duration) (string, time.Duration) {
	start := time.Now()
	conn.SetReadDeadline(start.Add(maxWait))
	got, _ := io.ReadAll(conn)
	return string(got), time.Since(start)
}

// trickleUntilClosed sends msg (then "X-Slow: 1" lines) a byte per interval
// until the peer closes; it returns what the peer sent and how long it took.
func trickleUntilClosed(conn net.Conn, msg string, interval time.Duration) (string, time.Duration) {
	start := time.Now()
	closed := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(start.Add(10 * time.Second))
		got, _ := io.ReadAll(conn)
		closed <- string(got)
	}()
	for i := 0; ; i++ {
		if i >= len(msg) {
			msg, i = "X-Slow: 1\r\n", 0
		}
		select {
		case got := <-closed:
			return got, time.Since(start)
		case <-time.After(interval):
		}
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			return <-closed, time.Since(start)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Contract §5: the client-side flags are usage errors unless positive
// (the cap and the shed rate: not negative), exit 2 in both routers.
func TestClientFlagsValidated(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/ok.json"
	writeConfig(t, path, configDoc("x", "a", nil, doc{"a": placement("shared", "http://127.0.0.1:1", nil)}))
	for _, args := range [][]string{
		{"--client-head-timeout-ms", "0"},
		{"--client-idle-timeout-ms", "-5"},
		{"--client-body-idle-timeout-ms", "x"},
		{"--max-client-connections", "-1"},
		{"--client-shed-rate", "-1"},
	} {
		t.Run(strings.Join(args, "="), func(t *testing.T) {
			p := startProc(t, "router", routerBin, append([]string{"--config", path,
				"--listen", testkit.FreeAddr(t), "--admin", testkit.FreeAddr(t), "--access-log", "off"}, args...))
			code, ok := p.WaitExit(startTimeout)
			if !ok || code != 2 {
				t.Errorf("router %v: exited %v with %d, want exit 2\nstderr:\n%s", args, ok, code, p.stderr.String())
			}
		})
	}
}
