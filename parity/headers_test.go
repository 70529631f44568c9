package parity

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Contract §3: request headers sent upstream, response headers sent back.
func TestHeaders(t *testing.T) {
	t.Parallel()
	c := startCells(t, "h")
	// hop answers with hop-by-hop fields and copies of the router's own
	// response headers, which the router must drop and replace.
	hop := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		body := "from the raw upstream"
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Secret-Hop, keep-alive\r\n"+
			"X-Secret-Hop: must not reach the client\r\n"+
			"Keep-Alive: timeout=9, max=99\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: must-not-reach-the-client\r\n"+
			"X-End-To-End: kept\r\n"+
			"X-Router: upstream-spoof\r\n"+
			"X-Routed-To: upstream-spoof\r\n"+
			"X-Request-Id: upstream-spoof\r\n"+
			"Content-Length: %d\r\n\r\n%s", len(body), body)
		return true
	})
	// wide answers with 300 header fields (6 KiB).
	wide := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n")
		for i := range 300 {
			fmt.Fprintf(&b, "X-Field-%d: v\r\n", i)
		}
		b.WriteString("\r\nwide")
		conn.Write([]byte(b.String()))
		return true
	})
	r := startRouter(t, configDoc("headers-1", "h",
		map[string]string{"kh": "h", "khop": "hop", "kwide": "wide"},
		doc{
			"h":    placement("shared", c.endpoint("h"), nil),
			"hop":  placement("shared", hop.endpoint(), nil),
			"wide": placement("shared", wide.endpoint(), nil),
		}))

	// upstream sends a raw request (exact header bytes) and returns what
	// the cell saw plus the client's response.
	upstream := func(t *testing.T, headers ...string) (echo, rawResponse) {
		t.Helper()
		head := "GET /hdr HTTP/1.1\r\n"
		hasHost := false
		for _, h := range headers {
			hasHost = hasHost || strings.HasPrefix(strings.ToLower(h), "host:")
			head += h + "\r\n"
		}
		if !hasHost {
			head += "Host: shop.example\r\n"
		}
		head += "X-Routing-Key: kh\r\nConnection: close\r\n\r\n"
		// Whether the router honours the close is TestWireRules' business.
		resps, _ := rawExchange(t, r.listen, []byte(head), 3*time.Second)
		if len(resps) != 1 {
			t.Fatalf("want one response, got %d", len(resps))
		}
		rp := resps[0]
		var e echo
		if err := json.Unmarshal(rp.body, &e); err != nil || e.Cell != "h" {
			t.Fatalf("want the echo of cell h, got %d %s", rp.status, rp.body)
		}
		return e, rp
	}
	wantUpstream := func(t *testing.T, e echo, name string, want ...string) {
		t.Helper()
		got := e.header(name)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("upstream %s: %q, want %q", name, got, want)
		}
	}

	t.Run("hop-by-hop request headers are removed", func(t *testing.T) {
		cases := []struct {
			name    string
			headers []string
			gone    []string
		}{
			{"fields named in Connection", []string{"Connection: X-Drop-Me, X-Drop-Too", "X-Drop-Me: 1", "X-Drop-Too: 2"}, []string{"X-Drop-Me", "X-Drop-Too"}},
			{"Keep-Alive", []string{"Keep-Alive: timeout=5"}, []string{"Keep-Alive"}},
			{"Proxy-Connection", []string{"Proxy-Connection: keep-alive"}, []string{"Proxy-Connection"}},
			{"TE other than trailers", []string{"TE: gzip"}, []string{"TE"}},
			{"Upgrade", []string{"Upgrade: h2c"}, []string{"Upgrade"}},
			{"Proxy-Authorization", []string{"Proxy-Authorization: Basic Zm9vOmJhcg=="}, []string{"Proxy-Authorization"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e, _ := upstream(t, append(tc.headers, "X-Keep-Me: yes")...)
				for _, h := range tc.gone {
					wantUpstream(t, e, h)
				}
				for _, v := range e.header("Connection") {
					for _, token := range strings.Split(v, ",") {
						if tok := strings.TrimSpace(strings.ToLower(token)); tok != "keep-alive" && tok != "close" {
							t.Errorf("upstream Connection %q carries the client's token %q", v, tok)
						}
					}
				}
				wantUpstream(t, e, "X-Keep-Me", "yes")
			})
		}
	})

	t.Run("TE trailers is kept", func(t *testing.T) {
		e, _ := upstream(t, "TE: trailers")
		wantUpstream(t, e, "TE", "trailers")
	})

	t.Run("Host is preserved and forwarded headers are set", func(t *testing.T) {
		e, _ := upstream(t, "Host: shop.example:8443")
		wantUpstream(t, e, "Host", "shop.example:8443")
		wantUpstream(t, e, "X-Forwarded-Host", "shop.example:8443")
		wantUpstream(t, e, "X-Forwarded-Proto", "http")
		wantUpstream(t, e, "X-Forwarded-For", "127.0.0.1")
		wantUpstream(t, e, "Via", "1.1 cellbench")
	})

	t.Run("X-Forwarded-For appends the client", func(t *testing.T) {
		e, _ := upstream(t, "X-Forwarded-For: 203.0.113.7, 198.51.100.2")
		if got := splitList(e.header("X-Forwarded-For")); strings.Join(got, ",") != "203.0.113.7,198.51.100.2,127.0.0.1" {
			t.Errorf("upstream X-Forwarded-For %q, want 203.0.113.7, 198.51.100.2, 127.0.0.1", e.header("X-Forwarded-For"))
		}
	})

	t.Run("X-Forwarded-For over several lines", func(t *testing.T) {
		e, _ := upstream(t, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 198.51.100.2")
		if got := splitList(e.header("X-Forwarded-For")); strings.Join(got, ",") != "203.0.113.7,198.51.100.2,127.0.0.1" {
			t.Errorf("upstream X-Forwarded-For %q, want 203.0.113.7, 198.51.100.2, 127.0.0.1", e.header("X-Forwarded-For"))
		}
	})

	t.Run("client X-Forwarded-Proto and X-Forwarded-Host are replaced", func(t *testing.T) {
		e, _ := upstream(t, "Host: shop.example", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example")
		wantUpstream(t, e, "X-Forwarded-Proto", "http")
		wantUpstream(t, e, "X-Forwarded-Host", "shop.example")
	})

	t.Run("X-Request-Id", func(t *testing.T) {
		long128 := strings.Repeat("r", 128)
		cases := []struct {
			name, sent string
			kept       bool
		}{
			{"valid id is kept", "abc-123_X.y:z", true},
			{"128 characters are kept", long128, true},
			{"absent id is generated", "", false},
			{"129 characters are replaced", long128 + "r", false},
			{"space is replaced", "has space", false},
			{"non-ASCII is replaced", "caf\u00e9", false},
		}
		seen := map[string]bool{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var hdrs []string
				if tc.sent != "" {
					hdrs = append(hdrs, "X-Request-Id: "+tc.sent)
				}
				e, rp := upstream(t, hdrs...)
				up := e.header("X-Request-Id")
				if len(up) != 1 {
					t.Fatalf("upstream X-Request-Id %q, want one value", up)
				}
				if got := rp.header.Values("X-Request-Id"); len(got) != 1 || got[0] != up[0] {
					t.Errorf("response X-Request-Id %q, want the id sent upstream %q", got, up[0])
				}
				switch {
				case tc.kept && up[0] != tc.sent:
					t.Errorf("id %q replaced by %q", tc.sent, up[0])
				case !tc.kept && (up[0] == tc.sent || !validRequestID(up[0])):
					t.Errorf("id %q: upstream got %q, want a fresh id of 1-128 visible ASCII chars", tc.sent, up[0])
				}
				if !tc.kept {
					if seen[up[0]] {
						t.Errorf("generated id %q twice", up[0])
					}
					seen[up[0]] = true
				}
			})
		}
	})

	t.Run("X-Request-Id sent twice is replaced", func(t *testing.T) {
		// RFC 9110 §5.3: two field lines are one value, "one, two", which
		// is not an id of visible ASCII characters (it has a space).
		e, rp := upstream(t, "X-Request-Id: one", "X-Request-Id: two")
		up := e.header("X-Request-Id")
		if len(up) != 1 || up[0] == "one" || up[0] == "two" || !validRequestID(up[0]) {
			t.Errorf("upstream X-Request-Id %q, want one freshly generated id", up)
		}
		if got := rp.header.Values("X-Request-Id"); len(up) == 1 && (len(got) != 1 || got[0] != up[0]) {
			t.Errorf("response X-Request-Id %q, want the id sent upstream %q", got, up[0])
		}
	})

	t.Run("response carries the router headers", func(t *testing.T) {
		rp := r.do(t, req{path: "/", key: "kh", header: map[string]string{"X-Request-Id": "resp-hdrs-1"}})
		wantServed(t, rp, "h", "shared", "")
		wantHeaders(t, rp, map[string]string{
			"X-Request-Id": "resp-hdrs-1", "X-Config-Version": "headers-1",
			"X-Upstream-Attempts": "1", "X-Circuit-State": "closed",
		})
	})

	t.Run("hop-by-hop response headers are removed", func(t *testing.T) {
		resps, _ := rawExchange(t, r.listen, []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: khop\r\nConnection: close\r\n\r\n"), clientTimeout)
		if len(resps) != 1 || resps[0].status != http.StatusOK || string(resps[0].body) != "from the raw upstream" {
			t.Fatalf("want the raw upstream's 200, got %+v", resps)
		}
		h := resps[0].header
		for _, name := range []string{"X-Secret-Hop", "Proxy-Connection", "Upgrade"} {
			if v := h.Values(name); len(v) > 0 {
				t.Errorf("client got hop-by-hop %s: %q", name, v)
			}
		}
		if v := h.Get("Keep-Alive"); strings.Contains(v, "max=99") {
			t.Errorf("client got the upstream's Keep-Alive %q", v)
		}
		if v := strings.ToLower(h.Get("Connection")); strings.Contains(v, "x-secret-hop") {
			t.Errorf("client got the upstream's Connection %q", v)
		}
		if v := h.Get("X-End-To-End"); v != "kept" {
			t.Errorf("end-to-end X-End-To-End %q, want kept", v)
		}
	})

	t.Run("a response with many header fields passes", func(t *testing.T) {
		rp := r.get(t, "/", "kwide")
		if d, ok := documentedDivergence(t); ok {
			wantRouterError(t, rp, d.status, d.code)
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "1", "X-Routed-To": "wide"})
			return
		}
		if rp.status != http.StatusOK || string(rp.body) != "wide" || rp.header.Get("X-Field-299") != "v" {
			t.Errorf("want the upstream's 200 with its 300 fields, got:\n%s", rp)
		}
	})

	t.Run("interim 1xx responses are forwarded", func(t *testing.T) {
		// RFC 9110 §15.2: a proxy forwards 1xx responses it did not ask for.
		resps, _ := rawExchange(t, r.listen, []byte("GET /?status=103 HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kh\r\nConnection: close\r\n\r\n"), clientTimeout)
		if len(resps) != 2 || resps[0].status != http.StatusEarlyHints || resps[1].status != http.StatusOK {
			t.Errorf("want 103 then 200, got %v", statuses(resps))
		}
	})

	t.Run("router headers replace upstream copies", func(t *testing.T) {
		rp := r.do(t, req{path: "/", key: "khop", header: map[string]string{"X-Request-Id": "spoof-check-1"}})
		wantHeaders(t, rp, map[string]string{"X-Router": routerName, "X-Routed-To": "hop", "X-Request-Id": "spoof-check-1"})
	})
}

// validRequestID is the contract's rule for a client id the router keeps:
// 1-128 visible ASCII characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// splitList splits comma-separated header values into trimmed elements.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}
