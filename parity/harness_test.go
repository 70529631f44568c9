package parity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellbench/internal/proc"
	"cellbench/internal/testkit"
	"cellbench/mockbackends/cell"
)

// Bounds of the harness itself (not of the behaviour under test).
const (
	startTimeout  = testkit.StartTimeout
	stopTimeout   = testkit.StopGrace
	clientTimeout = 15 * time.Second
	logTailLines  = 40
)

// child is a process the test owns, with all it wrote; it is stopped in
// t.Cleanup.
type child struct {
	*proc.Process
	stdout, stderr *testkit.Buffer
}

func startProc(t testing.TB, name, bin string, args []string) *child {
	t.Helper()
	if bin == routerBin {
		args = append(slices.Clip(routerArgs), args...)
	}
	c := &child{stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	c.Process = testkit.Start(t, proc.Spec{Name: name, Path: bin, Args: args,
		// A -race binary sleeps 1 s at exit by default; exit timing is under test.
		Env:    []string{"GORACE=atexit_sleep_ms=0"},
		Stdout: c.stdout, Stderr: c.stderr})
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cells is one mockbackends process serving named cells (contract §8).
type cells struct {
	admin string
	addrs map[string]string // cell name → host:port
	http  *http.Client
}

func startCells(t testing.TB, names ...string) *cells {
	t.Helper()
	// Port 0 everywhere: the ready line says where each cell is bound, so
	// parallel tests never race for a port.
	_, ready := testkit.StartCells(t, mockBin, names...)
	return &cells{admin: ready.Admin, addrs: ready.Cells, http: &http.Client{Timeout: clientTimeout}}
}

// endpoint is the placement endpoint of a cell.
func (c *cells) endpoint(name string) string { return "http://" + c.addrs[name] }

// chaos sets a cell's chaos knobs.
func (c *cells) chaos(t testing.TB, name string, knobs map[string]any) {
	t.Helper()
	body, _ := json.Marshal(knobs)
	resp, err := c.http.Post("http://"+c.admin+"/cells/"+name+"/chaos", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("chaos %s %s: %v", name, body, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("chaos %s %s: %s %s", name, body, resp.Status, b)
	}
}

// resetChaos clears every chaos knob of a cell.
func (c *cells) resetChaos(t testing.TB, name string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+c.admin+"/cells/"+name+"/chaos", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("reset chaos %s: %v", name, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("reset chaos %s: %s %s", name, resp.Status, b)
	}
}

// cellCounters are what a cell has served so far (GET /cells/NAME).
type cellCounters struct {
	Requests     int64 `json:"requests"` // non-health requests
	HealthProbes int64 `json:"health_probes"`
	HealthFailed int64 `json:"health_failed"` // probes answered 503
	Cancelled    int64 `json:"cancelled"`     // requests whose client left during a delay
	Inflight     int64 `json:"inflight"`
}

func (c *cells) counters(t testing.TB, name string) cellCounters {
	t.Helper()
	resp, err := c.http.Get("http://" + c.admin + "/cells/" + name)
	if err != nil {
		t.Fatalf("GET /cells/%s: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var cc cellCounters
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /cells/%s: %s %s", name, resp.Status, b)
	}
	if err := json.Unmarshal(b, &cc); err != nil {
		t.Fatalf("GET /cells/%s: %v: %s", name, err, b)
	}
	return cc
}

// settledRequests is a cell's request count once it has stopped moving
// (unchanged over 100 ms, at most 2 s): a request the router forwarded for
// an earlier case, before refusing the rest of it, can reach the cell after
// that case's answer, and would be counted against the next case.
func (c *cells) settledRequests(t testing.TB, name string) int64 {
	t.Helper()
	n := c.counters(t, name).Requests
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		next := c.counters(t, name).Requests
		if next == n {
			break
		}
		n = next
	}
	return n
}

// router is one router process under test.
type router struct {
	proc       *child
	listen     string
	admin      string
	configPath string
	accessLog  string
	base       string // http://listen
	http       *http.Client
}

// startRouter writes cfg (a document, marshalled to JSON unless it is
// already []byte) to a temp file and starts the router on fresh ports. The
// access log goes to a file unless extraArgs has its own --access-log;
// "--access-log", "" leaves the flag out (the router's default).
func startRouter(t testing.TB, cfg any, extraArgs ...string) *router {
	t.Helper()
	return startRouterVia(t, nil, cfg, extraArgs...)
}

// startRouterVia is startRouter with the router run under a launcher
// command, e.g. {"prlimit", "--nofile=1024:1024", "--"}.
func startRouterVia(t testing.TB, launcher []string, cfg any, extraArgs ...string) *router {
	t.Helper()
	dir := t.TempDir()
	r := &router{
		configPath: filepath.Join(dir, "router.json"),
		accessLog:  filepath.Join(dir, "access.log"),
		http: &http.Client{
			Timeout: clientTimeout,
			// The router's redirects, if any, are the answer under test.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	writeConfig(t, r.configPath, cfg)
	// Registered before the process so that it runs after the process has
	// been stopped: a race report may come late, and the logs are complete.
	t.Cleanup(func() {
		if r.proc == nil {
			return
		}
		if strings.Contains(r.proc.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the router reported a data race:\n%s", tail(r.proc.stderr.String(), 200))
		}
		if t.Failed() {
			al, _ := os.ReadFile(r.accessLog)
			t.Logf("router stderr (tail):\n%s\nrouter access log (tail):\n%s",
				tail(r.proc.stderr.String(), logTailLines), tail(string(al), logTailLines))
		}
	})
	// The router is told its ports, so a port freeAddr found free may be
	// taken (by any process) before the router binds it; such a start is
	// retried on fresh ports.
	for attempt := 1; ; attempt++ {
		r.listen, r.admin = testkit.FreeAddr(t), testkit.FreeAddr(t)
		r.base = "http://" + r.listen
		args := []string{"--config", r.configPath, "--listen", r.listen, "--admin", r.admin}
		// A flag given twice is an error for some argument parsers, so a
		// caller's own --access-log replaces the harness's file.
		if i := slices.Index(extraArgs, "--access-log"); i < 0 {
			args = append(args, "--access-log", r.accessLog)
			args = append(args, extraArgs...)
		} else if i+1 < len(extraArgs) && extraArgs[i+1] == "" {
			args = append(args, extraArgs[:i]...)
			args = append(args, extraArgs[i+2:]...)
		} else {
			args = append(args, extraArgs...)
		}
		if len(launcher) > 0 {
			cmd := append(slices.Clip(launcher[1:]), routerBin)
			cmd = append(append(cmd, routerArgs...), args...)
			r.proc = startProc(t, "router", launcher[0], cmd)
		} else {
			r.proc = startProc(t, "router", routerBin, args)
		}
		err := r.proc.WaitHealthy(context.Background(), "http://"+r.admin+"/healthz", startTimeout)
		if err == nil {
			return r
		}
		inUse := strings.Contains(strings.ToLower(r.proc.stderr.String()), "address already in use")
		if attempt < 3 && r.proc.Exited() && inUse {
			continue
		}
		t.Fatalf("%v\nstderr:\n%s", err, tail(r.proc.stderr.String(), logTailLines))
	}
}

func writeConfig(t testing.TB, path string, cfg any) {
	t.Helper()
	b, ok := cfg.([]byte)
	if !ok {
		var err error
		if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
			t.Fatalf("marshal config: %v", err)
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
}

// reply is a complete response from the router.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// req describes one request to the router.
type req struct {
	method string            // default GET
	path   string            // default /
	key    string            // X-Routing-Key; omitted when empty
	header map[string]string // extra headers
	body   io.Reader
	size   int64 // Content-Length when body is set; -1 for chunked
}

func (r *router) do(t testing.TB, q req) reply {
	t.Helper()
	resp, err := r.send(q)
	if err != nil {
		t.Fatalf("%s %s (key %q): %v", q.methodOr(), q.pathOr(), q.key, err)
	}
	return resp
}

// get is a GET with a routing key.
func (r *router) get(t testing.TB, path, key string) reply {
	t.Helper()
	return r.do(t, req{path: path, key: key})
}

// sent is the outcome of a request sent in the background.
type sent struct {
	reply
	err error
}

// sendAsync sends q on its own goroutine. The goroutine never touches the
// test, so it may outlive a failed one; the caller checks err.
func (r *router) sendAsync(q req) <-chan sent {
	ch := make(chan sent, 1)
	go func() {
		rp, err := r.send(q)
		ch <- sent{rp, err}
	}()
	return ch
}

func (q req) methodOr() string {
	if q.method == "" {
		return http.MethodGet
	}
	return q.method
}

func (q req) pathOr() string {
	if q.path == "" {
		return "/"
	}
	return q.path
}

func (r *router) send(q req) (reply, error) {
	hr, err := http.NewRequest(q.methodOr(), r.base+q.pathOr(), q.body)
	if err != nil {
		return reply{}, err
	}
	if q.body != nil {
		hr.ContentLength = q.size
	}
	if q.key != "" {
		hr.Header.Set("X-Routing-Key", q.key)
	}
	for k, v := range q.header {
		if strings.EqualFold(k, "Host") {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	resp, err := r.http.Do(hr)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("reading body: %w", err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

func (rp reply) String() string {
	b := rp.body
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	var h strings.Builder
	rp.header.Write(&h)
	return fmt.Sprintf("%d\n%s%s", rp.status, h.String(), b)
}

// echo is a cell's JSON echo of the request it received (contract §8).
type echo struct{ cell.Echo }

// header returns the values of one upstream request header (any case).
func (e echo) header(name string) []string {
	var out []string
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}

func (rp reply) echo(t testing.TB) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(rp.body, &e); err != nil || e.Cell == "" {
		t.Fatalf("response is not a cell echo (%v):\n%s", err, rp)
	}
	return e
}

// routerError is the body of an error the router makes itself (contract §3).
type routerError struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// wantRouterError checks that rp is an error the router made itself with
// the given status and code, in the contract's shape.
func wantRouterError(t testing.TB, rp reply, status int, code string) routerError {
	t.Helper()
	if rp.status != status {
		t.Fatalf("status %d, want %d (%s):\n%s", rp.status, status, code, rp)
	}
	if ct := rp.header.Get("Content-Type"); !isJSONContentType(ct) {
		t.Errorf("%s: Content-Type %q, want application/json", code, ct)
	}
	if rp.header.Get("X-Cell") != "" {
		t.Errorf("%s: the answer came from cell %q, not from the router", code, rp.header.Get("X-Cell"))
	}
	var fields map[string]any
	if err := json.Unmarshal(rp.body, &fields); err != nil {
		t.Fatalf("%s: body is not a JSON object (%v): %s", code, err, rp.body)
	}
	for _, k := range []string{"error", "message", "request_id"} {
		if _, ok := fields[k].(string); !ok {
			t.Errorf("%s: body field %q missing or not a string: %s", code, k, rp.body)
		}
	}
	if len(fields) != 3 {
		t.Errorf("%s: body has fields beyond error, message, request_id: %s", code, rp.body)
	}
	var e routerError
	json.Unmarshal(rp.body, &e)
	if e.Error != code {
		t.Errorf("error code %q, want %q: %s", e.Error, code, rp.body)
	}
	if e.Message == "" {
		t.Errorf("%s: empty message", code)
	}
	if id := rp.header.Get("X-Request-Id"); e.RequestID == "" || e.RequestID != id {
		t.Errorf("%s: body request_id %q, X-Request-Id header %q: want the same non-empty id", code, e.RequestID, id)
	}
	if got := rp.header.Get("X-Router"); got != routerName {
		t.Errorf("%s: X-Router %q, want %q", code, got, routerName)
	}
	if rp.header.Get("X-Config-Version") == "" {
		t.Errorf("%s: no X-Config-Version: the snapshot is known for every parsed request", code)
	}
	return e
}

func isJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// eventually polls cond every interval until it holds or timeout passes;
// cond returns a description of what it saw, for the failure message.
func eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, seen := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v; last seen: %s", what, timeout, seen)
		}
		time.Sleep(interval)
	}
}

// getJSON fetches an admin endpoint and decodes it into v.
func (r *router) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := r.http.Get("http://" + r.admin + path)
	if err != nil {
		t.Fatalf("GET admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET admin %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET admin %s: %v: %s", path, err, b)
	}
}

// upstreamState is one placement in /debug/upstreams.
type upstreamState struct {
	Endpoint string `json:"endpoint"`
	Health   string `json:"health"`
	Circuit  string `json:"circuit"`
	Inflight *int64 `json:"inflight"`
}

func (r *router) upstreams(t testing.TB) map[string]upstreamState {
	t.Helper()
	var v struct {
		Placements map[string]upstreamState `json:"placements"`
	}
	r.getJSON(t, "/debug/upstreams", &v)
	return v.Placements
}

// events returns the event-log lines (JSON objects on stderr) with this msg.
func (r *router) events(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(completeLines(r.proc.stderr.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// accessLines returns the access-log lines written so far.
func (r *router) accessLines(t testing.TB) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(r.accessLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read access log: %v", err)
	}
	var out []map[string]any
	for _, line := range strings.Split(completeLines(string(b)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("access log line is not a JSON object (%v): %s", err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// completeLines is text up to its last newline: a line still being
// written is left for a later read.
func completeLines(text string) string {
	return text[:strings.LastIndexByte(text, '\n')+1]
}

// accessLineFor waits (bounded) for the access-log line of a request id.
func (r *router) accessLineFor(t testing.TB, requestID string) map[string]any {
	t.Helper()
	var line map[string]any
	eventually(t, 2*time.Second, 20*time.Millisecond, "access log line for "+requestID, func() (bool, string) {
		for _, m := range r.accessLines(t) {
			if m["request_id"] == requestID {
				line = m
				return true, ""
			}
		}
		return false, "no line"
	})
	return line
}

// serverTiming is the contract's Server-Timing value: upstream;dur=<ms>.
var serverTiming = regexp.MustCompile(`^upstream;dur=([0-9]+(?:\.[0-9]+)?)$`)

// wantServed checks that a cell answered rp through placement (cells are
// named after the placement they back), with the contract's response headers.
// failover is "" when the primary served.
func wantServed(t testing.TB, rp reply, placement, reason, failover string) {
	t.Helper()
	if rp.status != http.StatusOK {
		t.Fatalf("want 200 from %s, got:\n%s", placement, rp)
	}
	if got := rp.header.Get("X-Cell"); got != placement {
		t.Errorf("answered by cell %q, want %q", got, placement)
	}
	wantHeaders(t, rp, map[string]string{
		"X-Routed-To":       placement,
		"X-Route-Reason":    reason,
		"X-Failover-Reason": failover,
		"X-Router":          routerName,
	})
	if rp.header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
	if rp.header.Get("X-Config-Version") == "" {
		t.Errorf("no X-Config-Version")
	}
	if st := rp.header.Get("X-Circuit-State"); st != "closed" && st != "open" && st != "half_open" {
		t.Errorf("X-Circuit-State %q, want closed, open or half_open", st)
	}
	if n, err := strconv.Atoi(rp.header.Get("X-Upstream-Attempts")); err != nil || n < 1 {
		t.Errorf("X-Upstream-Attempts %q, want a count >= 1", rp.header.Get("X-Upstream-Attempts"))
	}
	if st := rp.header.Get("Server-Timing"); !serverTiming.MatchString(st) {
		t.Errorf("Server-Timing %q, want upstream;dur=<ms>", st)
	}
}

// wantHeaders checks exact header values; "" means the header is absent.
func wantHeaders(t testing.TB, rp reply, want map[string]string) {
	t.Helper()
	for k, v := range want {
		vals := rp.header.Values(k)
		switch {
		case v == "" && len(vals) > 0:
			t.Errorf("%s: %q, want no such header", k, vals)
		case v != "" && (len(vals) != 1 || vals[0] != v):
			t.Errorf("%s: %q, want %q", k, vals, v)
		}
	}
}

// totalRequests is the number of proxied requests all cells have seen.
func (c *cells) totalRequests(t testing.TB) int64 {
	t.Helper()
	var n int64
	for name := range c.addrs {
		n += c.counters(t, name).Requests
	}
	return n
}

// pattern is a deterministic request body of n bytes.
func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func newPattern(n int64) io.Reader { return bytes.NewReader(pattern(n)) }

func patternSHA256(n int64) string {
	sum := sha256.Sum256(pattern(n))
	return hex.EncodeToString(sum[:])
}

func itoa(n int) string { return strconv.Itoa(n) }
