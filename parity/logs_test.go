package parity

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// accessFields are the fields of every access-log line (contract §4).
var accessFields = []string{"ts", "msg", "request_id", "method", "path", "routing_key", "placement",
	"route_reason", "failover_reason", "upstream", "status", "attempts", "error", "duration_ms",
	"upstream_ms", "bytes_out", "config_version", "router"}

// Contract §4: the access log and the event log.
func TestLogs(t *testing.T) {
	t.Parallel()
	c := startCells(t, "p", "h")
	refused := refusedAddr(t)
	r := startRouter(t, configDoc("logs-1", "p",
		map[string]string{"lk": "p", "lq": "q", "lh": "h"},
		doc{
			"p": placement("shared", c.endpoint("p"), nil),
			"q": placement("dedicated", "http://"+refused, doc{"circuit_breaker": breaker(1, 60000)}),
			"h": placement("shared", c.endpoint("h"), doc{"health_check": healthCheck(100, 80, 1, 1)}),
		}))

	// line fetches the access-log line of a request and checks the fields
	// every line has.
	line := func(t *testing.T, id string) map[string]any {
		t.Helper()
		l := r.accessLineFor(t, id)
		for _, f := range accessFields {
			if _, ok := l[f]; !ok {
				t.Errorf("access line has no %q: %v", f, l)
			}
		}
		ts, _ := l["ts"].(string)
		if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || time.Since(at).Abs() > time.Minute {
			t.Errorf("ts %q: want the RFC 3339 UTC time of the request", ts)
		}
		for _, f := range []string{"status", "attempts", "duration_ms", "upstream_ms", "bytes_out"} {
			if v, ok := l[f].(float64); !ok || v < 0 {
				t.Errorf("%s %v: want a non-negative JSON number", f, l[f])
			}
		}
		want := doc{"msg": "request", "request_id": id, "config_version": "logs-1", "router": routerName}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s %v, want %v", k, l[k], v)
			}
		}
		return l
	}
	wantFields := func(t *testing.T, l map[string]any, want doc) {
		t.Helper()
		for k, v := range want {
			got := l[k]
			if n, ok := v.(int); ok {
				v = float64(n)
			}
			if got != v {
				t.Errorf("access %s %v, want %v", k, got, v)
			}
		}
	}

	t.Run("startup logs config_applied", func(t *testing.T) {
		if !hasEvent(r.events("config_applied"), doc{"version": "logs-1", "source": "file"}) {
			t.Errorf("no config_applied event {version logs-1, source file} on stderr:\n%s", r.proc.stderr.String())
		}
	})

	t.Run("proxied request", func(t *testing.T) {
		rp := r.do(t, req{path: "/logs/path?q=1", key: "lk", header: map[string]string{"X-Request-Id": "log-req-1"}})
		wantServed(t, rp, "p", "shared", "")
		l := line(t, "log-req-1")
		wantFields(t, l, doc{"method": "GET", "path": "/logs/path", "routing_key": "lk", "placement": "p",
			"route_reason": "shared", "failover_reason": "", "status": 200, "attempts": 1, "error": "",
			"bytes_out": len(rp.body)})
		if l["upstream"] != c.endpoint("p") {
			t.Errorf("upstream %v, want the endpoint of p (%s)", l["upstream"], c.endpoint("p"))
		}
		d, _ := l["duration_ms"].(float64)
		u, _ := l["upstream_ms"].(float64)
		if u > d+1 {
			t.Errorf("upstream_ms %v exceeds duration_ms %v", u, d)
		}
	})

	t.Run("path is logged as sent", func(t *testing.T) {
		// The contract does not say raw or decoded; the suite wants the
		// request target's path as the client sent it and the cell got it,
		// so /a%2Fb and /a/b stay two different paths in the log.
		r.do(t, req{path: "/p%2Fq/%7Euser?x=1", key: "lk", header: map[string]string{"X-Request-Id": "log-raw-path"}})
		if got := line(t, "log-raw-path")["path"]; got != "/p%2Fq/%7Euser" {
			t.Errorf("path %v, want /p%%2Fq/%%7Euser (as sent, without the query)", got)
		}
	})

	t.Run("durations are milliseconds", func(t *testing.T) {
		r.do(t, req{path: "/?delay_ms=200", key: "lk", header: map[string]string{"X-Request-Id": "log-slow"}})
		l := line(t, "log-slow")
		d, _ := l["duration_ms"].(float64)
		u, _ := l["upstream_ms"].(float64)
		if d < 195 || d > 5000 || u < 195 || u > d+1 {
			t.Errorf("duration_ms %v, upstream_ms %v for a request the cell held 200 ms: want both about 200", d, u)
		}
	})

	t.Run("router error", func(t *testing.T) {
		r.do(t, req{method: http.MethodPost, path: "/nokey", header: map[string]string{"X-Request-Id": "log-req-2"}})
		l := line(t, "log-req-2")
		wantFields(t, l, doc{"method": "POST", "path": "/nokey", "routing_key": "", "status": 400,
			"attempts": 0, "error": "missing_routing_key", "upstream": "", "failover_reason": ""})
	})

	t.Run("upstream failure, breaker and failover", func(t *testing.T) {
		r.do(t, req{path: "/", key: "lq", header: map[string]string{"X-Request-Id": "log-req-3"}})
		wantFields(t, line(t, "log-req-3"), doc{"placement": "q", "route_reason": "dedicated", "status": 502,
			"attempts": 1, "error": "upstream_connect_error"})
		// One failure opened q's breaker: the default placement serves.
		rp := r.do(t, req{path: "/", key: "lq", header: map[string]string{"X-Request-Id": "log-req-4"}})
		wantServed(t, rp, "p", "dedicated", "circuit_open")
		wantFields(t, line(t, "log-req-4"), doc{"placement": "p", "route_reason": "dedicated",
			"failover_reason": "circuit_open", "status": 200, "attempts": 1, "error": "", "upstream": c.endpoint("p")})
		if !hasEvent(r.events("circuit_changed"), doc{"placement": "q", "from": "closed", "to": "open"}) {
			t.Errorf("no circuit_changed event {placement q, from closed, to open}:\n%s", r.proc.stderr.String())
		}
	})

	t.Run("health_changed", func(t *testing.T) {
		c.chaos(t, "h", doc{"health": "fail"})
		eventually(t, 3*time.Second, 20*time.Millisecond, "health_changed event for h", func() (bool, string) {
			return hasEvent(r.events("health_changed"), doc{"placement": "h", "from": "healthy", "to": "unhealthy"}), ""
		})
		c.resetChaos(t, "h")
		eventually(t, 3*time.Second, 20*time.Millisecond, "health_changed event back to healthy", func() (bool, string) {
			return hasEvent(r.events("health_changed"), doc{"placement": "h", "from": "unhealthy", "to": "healthy"}), ""
		})
	})

	t.Run("every line is one JSON object", func(t *testing.T) {
		for _, s := range strings.Split(strings.TrimSpace(completeLines(r.proc.stderr.String())), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				t.Errorf("stderr line is not a JSON object: %s", s)
			} else if msg, _ := m["msg"].(string); msg == "" {
				t.Errorf("stderr line without msg: %s", s)
			}
		}
		if n := len(r.accessLines(t)); n < 4 {
			t.Errorf("%d access lines, want one per request (>= 4)", n)
		}
	})

	t.Run("access log to stdout, off, and stdout by default", func(t *testing.T) {
		for _, mode := range []string{"stdout", "off", ""} { // "": no flag
			name := mode
			if name == "" {
				name = "default"
			}
			t.Run(name, func(t *testing.T) {
				r := startRouter(t, configDoc("logs-2", "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)}), "--access-log", mode)
				r.do(t, req{path: "/", key: "x", header: map[string]string{"X-Request-Id": "log-" + mode}})
				found := func() bool {
					for _, s := range strings.Split(r.proc.stdout.String(), "\n") {
						var m map[string]any
						if json.Unmarshal([]byte(s), &m) == nil && m["msg"] == "request" && m["request_id"] == "log-"+mode {
							return true
						}
					}
					return false
				}
				if mode != "off" {
					eventually(t, 2*time.Second, 20*time.Millisecond, "access line on stdout", func() (bool, string) {
						return found(), r.proc.stdout.String()
					})
					return
				}
				time.Sleep(300 * time.Millisecond)
				if out := r.proc.stdout.String(); found() || strings.Contains(out, `"msg":"request"`) {
					t.Errorf("--access-log off still logged requests on stdout:\n%s", out)
				}
			})
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		r.proc.Signal(syscall.SIGTERM)
		if code, ok := r.proc.WaitExit(10 * time.Second); !ok || code != 0 {
			t.Fatalf("after SIGTERM: exited %v, code %d; want exit 0", ok, code)
		}
		if len(r.events("shutdown")) == 0 {
			t.Errorf("no shutdown event on stderr:\n%s", r.proc.stderr.String())
		}
	})
}
