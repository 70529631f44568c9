package parity

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Contract §3: after a router-made error the connection stays open for the
// next request, unless the request's framing is broken or its body is not
// going to be read (413, 400 for an unreadable body, 501 for CONNECT, 408):
// then the answer says `Connection: close` and the router closes. Each case
// pipelines a second request behind the one refused.
func TestConnectionAfterRouterErrors(t *testing.T) {
	t.Parallel()
	const limit = 1000
	c := startCells(t, "p")
	r := startRouter(t, configDoc("errclose-1", "p",
		map[string]string{"k": "p", "gone": "dead"},
		doc{
			"p":    placement("shared", c.endpoint("p"), doc{"max_request_body_bytes": limit}),
			"dead": placement("shared", "http://127.0.0.1:1", nil),
		}))
	const next = "GET /next HTTP/1.1\r\nHost: x\r\nX-Routing-Key: k\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name, first string
		status      int
		code        string
		closes      bool
	}{
		{"missing routing key keeps the connection",
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest, "missing_routing_key", false},
		{"a declared body over the limit closes it",
			"POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: k\r\nContent-Length: 1001\r\n\r\n" + strings.Repeat("a", limit+1),
			http.StatusRequestEntityTooLarge, "body_too_large", true},
		{"a malformed chunked body closes it",
			"POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: k\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
			http.StatusBadRequest, "bad_request", true},
		{"CONNECT closes it",
			"CONNECT cell.example:443 HTTP/1.1\r\nHost: cell.example:443\r\nX-Routing-Key: k\r\n\r\n",
			http.StatusNotImplemented, "method_not_supported", true},
		{"an upstream connect error keeps the connection",
			"GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: gone\r\n\r\n", http.StatusBadGateway, "upstream_connect_error", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closes := tc.closes
			if _, ok := documentedDivergence(t); ok {
				closes = true
			}
			resps, closed := rawExchange(t, r.listen, []byte(tc.first+next), 5*time.Second)
			if len(resps) == 0 {
				t.Fatalf("no answer")
			}
			wantRouterError(t, reply{status: resps[0].status, header: resps[0].header, body: resps[0].body}, tc.status, tc.code)
			says := resps[0].close
			switch {
			case closes && (!says || len(resps) != 1 || !closed):
				t.Errorf("want the answer to say Connection: close (%v) and the connection closed after it (%v, %d answers)", says, closed, len(resps))
			case !closes && (says || len(resps) != 2 || resps[1].status != http.StatusOK):
				t.Errorf("want the connection kept: Connection: close %v, answers %v", says, statuses(resps))
			}
		})
	}
}
