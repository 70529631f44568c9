package cell

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startCell runs a cell on a free loopback port for the length of the test.
func startCell(t *testing.T, name string) (*Cell, string) {
	t.Helper()
	c, err := New(name, "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	return c, "http://" + c.Addr()
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, req)
}

func decodeEcho(t *testing.T, body []byte) Echo {
	t.Helper()
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("echo %q: %v", body, err)
	}
	return e
}

func TestEchoStreamsBodyThroughDigest(t *testing.T) {
	_, base := startCell(t, "tier1")
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	sum := sha256.Sum256(payload)

	// io.MultiReader hides the length, so the client sends it chunked.
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/a%2Fb?x=1&x=2&flag", io.MultiReader(bytes.NewReader(payload)))
	req.Host = "acme.example"
	req.Header.Add("X-Request-Id", "r-1")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, body := do(t, req)

	if resp.StatusCode != 200 || resp.Header.Get("X-Cell") != "tier1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, X-Cell %q, Content-Type %q", resp.StatusCode, resp.Header.Get("X-Cell"), resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength != int64(len(body)) {
		t.Fatalf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
	}
	e := decodeEcho(t, body)
	if e.Cell != "tier1" || e.Method != "PUT" || e.Path != "/v1/a%2Fb" || e.Query != "x=1&x=2&flag" {
		t.Fatalf("echo = %+v", e)
	}
	if e.BodyBytes != int64(len(payload)) || e.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("body_bytes %d sha %s, want %d %x", e.BodyBytes, e.BodySHA256, len(payload), sum)
	}
	for name, want := range map[string][]string{
		"Host": {"acme.example"}, "X-Request-Id": {"r-1"}, "X-Multi": {"a", "b"}, "Transfer-Encoding": {"chunked"},
	} {
		if got := e.Headers[name]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("headers[%s] = %q, want %q", name, got, want)
		}
	}

	// An empty body has the well-known empty digest.
	_, body = get(t, base+"/")
	if e := decodeEcho(t, body); e.BodyBytes != 0 || e.BodySHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty body echo = %+v", e)
	}
}

func TestStatusKnob(t *testing.T) {
	_, base := startCell(t, "c")
	resp, body := get(t, base+"/x?status=503")
	if resp.StatusCode != 503 || decodeEcho(t, body).Path != "/x" {
		t.Fatalf("status=503: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, base+"/x?status=204")
	if resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("status=204: %d with %d body bytes", resp.StatusCode, len(body))
	}
	// A 1xx is sent as an interim response before the final 200 echo.
	var interim []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		interim = append(interim, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, base+"/x?status=103", nil)
	resp, body = do(t, req)
	if resp.StatusCode != 200 || len(interim) != 1 || interim[0] != 103 || decodeEcho(t, body).Cell != "c" {
		t.Fatalf("status=103: final %d, interim %v", resp.StatusCode, interim)
	}
}

func TestDelayKnob(t *testing.T) {
	_, base := startCell(t, "c")
	start := time.Now()
	resp, _ := get(t, base+"/?delay_ms=150")
	if elapsed := time.Since(start); resp.StatusCode != 200 || elapsed < 150*time.Millisecond {
		t.Fatalf("delay_ms=150 answered %d after %v", resp.StatusCode, elapsed)
	}
}

func TestDelayEndsWhenClientLeaves(t *testing.T) {
	c, base := startCell(t, "c")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/?delay_ms=60000", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected the client to time out, got %v", err)
	}
	// Without cancellation the handler would stay in flight for a minute.
	waitFor(t, "handler to notice the client left", func() bool {
		s := c.Counters().Snapshot()
		return s.Cancelled == 1 && s.Inflight == 0
	})
	if s := c.Counters().Snapshot(); len(s.ByStatus) != 0 {
		t.Fatalf("a cancelled request has no status, got %v", s.ByStatus)
	}
}

func TestSizeKnob(t *testing.T) {
	_, base := startCell(t, "c")
	for _, size := range []int{0, 1, 100_000} {
		resp, body := get(t, base+"/?size="+strconv.Itoa(size))
		if resp.StatusCode != 200 || resp.ContentLength != int64(size) || len(body) != size || strings.Trim(string(body), "x") != "" {
			t.Fatalf("size=%d: status %d, Content-Length %d, %d bytes", size, resp.StatusCode, resp.ContentLength, len(body))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Fatalf("size=%d: Content-Type %q", size, ct)
		}
	}
	resp, body := get(t, base+"/?size=10&status=404")
	if resp.StatusCode != 404 || len(body) != 10 {
		t.Fatalf("size with status: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestChunksKnobFraming(t *testing.T) {
	c, _ := startCell(t, "c")
	// Raw HTTP/1.1 so the test sees the chunk framing itself.
	raw := rawRoundTrip(t, c.Addr(), "GET /?size=10&chunks=3 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
	if !strings.Contains(raw, "Transfer-Encoding: chunked\r\n") || !strings.HasSuffix(raw, "\r\n\r\n4\r\nxxxx\r\n3\r\nxxx\r\n3\r\nxxx\r\n0\r\n\r\n") {
		t.Fatalf("size=10&chunks=3 framing:\n%q", raw)
	}
	raw = rawRoundTrip(t, c.Addr(), "GET /?chunks=2 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(raw, "\r\n\r\na\r\nchunk 1/2\n\r\na\r\nchunk 2/2\n\r\n0\r\n\r\n") {
		t.Fatalf("chunks=2 framing:\n%q", raw)
	}
}

func TestChunksAreFlushedOneByOne(t *testing.T) {
	_, base := startCell(t, "c")
	start := time.Now()
	resp, err := http.Get(base + "/?chunks=2&chunk_delay_ms=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	firstAt := time.Since(start)
	if err != nil || first != "chunk 1/2\n" {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	// Were the chunks buffered, the first would arrive with the second,
	// after the full second of chunk delay.
	if firstAt > 800*time.Millisecond {
		t.Fatalf("first chunk arrived after %v, not flushed on its own", firstAt)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "chunk 2/2\n" || time.Since(start) < time.Second {
		t.Fatalf("second chunk %q after %v", rest, time.Since(start))
	}
}

func TestCloseKnob(t *testing.T) {
	c, base := startCell(t, "c")
	_, err := http.Get(base + "/?close=1")
	if err == nil {
		t.Fatal("close=1 answered")
	}
	if s := c.Counters().Snapshot(); s.Closed != 1 || s.Requests != 1 || len(s.ByStatus) != 0 {
		t.Fatalf("counters after close=1: %+v", s)
	}
}

func TestBadKnobs(t *testing.T) {
	c, base := startCell(t, "c")
	for _, q := range []string{"status=700", "delay_ms=-1", "size=x", "chunks=0", "chunk_delay_ms=5", "close=2", "status=1&status=2"} {
		resp, body := get(t, base+"/?"+q)
		var e struct{ Error, Message string }
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 400 || e.Error != "bad_knob" || e.Message == "" {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Cell") != "c" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: headers %v", q, resp.Header)
		}
	}
	if s := c.Counters().Snapshot(); s.Requests != 7 || s.ByStatus["400"] != 7 {
		t.Fatalf("bad knobs are counted: %+v", s)
	}
}

func TestHealthAndChaos(t *testing.T) {
	c, base := startCell(t, "c")
	resp, body := get(t, base+"/health?status=500&delay_ms=5000")
	if resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\"}\n" || resp.Header.Get("X-Cell") != "c" {
		t.Fatalf("health (knobs ignored): %d %s", resp.StatusCode, body)
	}

	// Request chaos leaves health alone; health chaos leaves requests alone.
	apply(t, c, `{"status":502}`)
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 200 {
		t.Fatalf("health under status chaos: %d", resp.StatusCode)
	}
	if resp, body := get(t, base+"/x?status=404"); resp.StatusCode != 502 || decodeEcho(t, body).Path != "/x" {
		t.Fatalf("chaos status beats the knob and still echoes: %d %s", resp.StatusCode, body)
	}
	apply(t, c, `{"status":0,"health":"fail"}`)
	if resp, body := get(t, base+"/health"); resp.StatusCode != 503 || string(body) != "{\"status\":\"fail\"}\n" {
		t.Fatalf("failed health: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/x"); resp.StatusCode != 200 {
		t.Fatalf("request under health chaos: %d", resp.StatusCode)
	}
	// Only GET on the health path is a probe.
	req, _ := http.NewRequest(http.MethodPost, base+"/health", nil)
	if resp, body := do(t, req); resp.StatusCode != 200 || decodeEcho(t, body).Method != "POST" {
		t.Fatalf("POST /health: %d %s", resp.StatusCode, body)
	}

	apply(t, c, `{"health":"ok","delay_ms":120}`)
	start := time.Now()
	if resp, _ := get(t, base+"/x"); resp.StatusCode != 200 || time.Since(start) < 120*time.Millisecond {
		t.Fatalf("delay chaos: %d after %v", resp.StatusCode, time.Since(start))
	}
	start = time.Now()
	get(t, base+"/health")
	if time.Since(start) >= 120*time.Millisecond {
		t.Fatal("delay chaos slowed the health probe")
	}

	s := c.Counters().Snapshot()
	if s.HealthProbes != 4 || s.HealthFailed != 1 || s.Requests != 4 ||
		s.ByStatus["502"] != 1 || s.ByStatus["200"] != 3 || s.Inflight != 0 {
		t.Fatalf("counters = %+v", s)
	}
}

func TestErrorRate(t *testing.T) {
	c, base := startCell(t, "c")
	apply(t, c, `{"error_rate":1}`)
	for range 20 {
		if resp, body := get(t, base+"/"); resp.StatusCode != 500 || decodeEcho(t, body).Cell != "c" {
			t.Fatalf("error_rate 1: %d", resp.StatusCode)
		}
	}
	apply(t, c, `{"error_rate":0.5}`)
	const n = 400
	failed := 0
	for range n {
		if resp, _ := get(t, base+"/"); resp.StatusCode == 500 {
			failed++
		}
	}
	// Binomial(400, 0.5) has a standard deviation of 10: ±80 is 8 sigma.
	if failed < 120 || failed > 280 {
		t.Fatalf("error_rate 0.5 failed %d of %d", failed, n)
	}
	if got := c.Counters().Snapshot().ByStatus["500"]; got != uint64(20+failed) {
		t.Fatalf("by_status 500 = %d, want %d", got, 20+failed)
	}
}

func TestDownRefusesAndComesBack(t *testing.T) {
	c, base := startCell(t, "c")
	addr := c.Addr()

	// An idle keep-alive connection and a request in flight are both cut.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	inflight := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/?delay_ms=30000")
		if err == nil {
			resp.Body.Close()
		}
		inflight <- err
	}()
	waitFor(t, "request in flight", func() bool { return c.Counters().Snapshot().Inflight == 1 })

	state := apply(t, c, `{"down":true}`)
	if state.Up || !state.Chaos.Down || state.Address != addr {
		t.Fatalf("state after down: %+v", state)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); !isRefused(err) {
		t.Fatalf("connect while down: %v, want connection refused", err)
	}
	select {
	case err := <-inflight:
		if err == nil {
			t.Fatal("the request in flight was answered although the cell went down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request in flight was not cut when the cell went down")
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("idle connection after down: %v, want closed", err)
	}

	if state := apply(t, c, `{"down":false}`); !state.Up || state.Address != addr {
		t.Fatalf("state after up: %+v", state)
	}
	if resp, _ := get(t, base+"/"); resp.StatusCode != 200 {
		t.Fatalf("after up: %d", resp.StatusCode)
	}

	apply(t, c, `{"down":true,"status":503,"health":"fail","error_rate":0.5,"delay_ms":7}`)
	state, err = c.ResetChaos()
	if err != nil || !state.Up || state.Chaos != (ChaosState{Chaos: NormalChaos}) {
		t.Fatalf("reset: %+v, %v", state, err)
	}
	if resp, _ := get(t, base+"/"); resp.StatusCode != 200 {
		t.Fatalf("after reset: %d", resp.StatusCode)
	}
}

func TestUpFailsWhenAddressTaken(t *testing.T) {
	c, _ := startCell(t, "c")
	addr := c.Addr()
	apply(t, c, `{"down":true}`)
	squatter, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	p, _ := ParseChaosPatch([]byte(`{"down":false,"status":503}`))
	if _, err := c.ApplyChaos(p); err == nil {
		t.Fatal("came up on a taken address")
	}
	if s := c.State(); s.Up || s.Chaos.Status != 0 {
		t.Fatalf("a failed patch was partly applied: %+v", s)
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "has space", "x\r\ny", strings.Repeat("a", 65)} {
		if _, err := New(name, "127.0.0.1:0", Options{}); err == nil {
			t.Errorf("New(%q) accepted", name)
		}
	}
	if _, err := New("ok", "no-port", Options{}); err == nil {
		t.Error("New accepted an address without a port")
	}
}

func apply(t *testing.T, c *Cell, body string) State {
	t.Helper()
	p, err := ParseChaosPatch([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.ApplyChaos(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rawRoundTrip(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestHealthPathOption(t *testing.T) {
	c, err := New("c", "127.0.0.1:0", Options{HealthPath: "/ready?deep=1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(context.Background())
	base := "http://" + c.Addr()
	if resp, body := get(t, base+"/ready"); resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("GET /ready: %d %s", resp.StatusCode, body)
	}
	if _, body := get(t, base+"/health"); decodeEcho(t, body).Path != "/health" {
		t.Fatalf("GET /health is not the probe here, got %s", body)
	}
	if s := c.Counters().Snapshot(); s.HealthProbes != 1 || s.Requests != 1 {
		t.Fatalf("counters = %+v", s)
	}
}
