package parity

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Contract §2 rules 1-2: routing key → placement and route reason.
func TestRouting(t *testing.T) {
	t.Parallel()
	c := startCells(t, "tier1", "visa", "tier3", "slash")
	r := startRouter(t, configDoc("routing-1", "tier3",
		map[string]string{"acme": "tier1", "visa": "visa", "sl": "slash"},
		doc{
			"slash": placement("shared", c.endpoint("slash")+"/", nil),
			"tier1": placement("shared", c.endpoint("tier1"), nil),
			"visa":  placement("dedicated", c.endpoint("visa"), nil),
			"tier3": placement("shared", c.endpoint("tier3"), nil),
		}))

	t.Run("missing key is 400 and never reaches a cell", func(t *testing.T) {
		before := c.totalRequests(t)
		for _, q := range []req{
			{path: "/orders"},
			{path: "/orders", header: map[string]string{"X-Routing-Key": ""}},
			{method: http.MethodPost, path: "/orders", body: newPattern(100), size: 100},
		} {
			rp := r.do(t, q)
			wantRouterError(t, rp, http.StatusBadRequest, "missing_routing_key")
			wantHeaders(t, rp, map[string]string{"X-Upstream-Attempts": "", "X-Config-Version": "routing-1"})
		}
		if after := c.totalRequests(t); after != before {
			t.Errorf("cells saw %d requests for requests without a routing key", after-before)
		}
	})

	t.Run("shared route", func(t *testing.T) {
		rp := r.get(t, "/a/b?x=1", "acme")
		wantServed(t, rp, "tier1", "shared", "")
		wantHeaders(t, rp, map[string]string{"X-Config-Version": "routing-1", "X-Upstream-Attempts": "1", "X-Circuit-State": "closed"})
		e := rp.echo(t)
		if e.Method != http.MethodGet || e.Path != "/a/b" || e.Query != "x=1" {
			t.Errorf("cell saw %s %s ?%s, want GET /a/b ?x=1", e.Method, e.Path, e.Query)
		}
	})

	t.Run("dedicated route", func(t *testing.T) {
		wantServed(t, r.get(t, "/", "visa"), "visa", "dedicated", "")
	})

	t.Run("unknown key goes to default placement", func(t *testing.T) {
		wantServed(t, r.get(t, "/", "initech"), "tier3", "default", "")
	})

	t.Run("keys match exactly", func(t *testing.T) {
		wantServed(t, r.get(t, "/", "ACME"), "tier3", "default", "")
		wantServed(t, r.get(t, "/", "acme2"), "tier3", "default", "")
	})

	t.Run("the first X-Routing-Key line decides", func(t *testing.T) {
		// The contract is silent; both routers take the first field line
		// (a comma inside one line is part of the key), and must go on
		// agreeing.
		for _, tc := range []struct{ lines, cell string }{
			{"X-Routing-Key: acme\r\nX-Routing-Key: visa\r\n", "tier1"},
			{"X-Routing-Key: visa\r\nX-Routing-Key: acme\r\n", "visa"},
			{"X-Routing-Key: acme, visa\r\n", "tier3"},
		} {
			resps, _ := rawExchange(t, r.listen, []byte("GET / HTTP/1.1\r\nHost: x\r\n"+tc.lines+"Connection: close\r\n\r\n"), clientTimeout)
			switch {
			case len(resps) != 1:
				t.Errorf("%q: want one answer, got statuses %v", tc.lines, statuses(resps))
			case resps[0].header.Get("X-Cell") != tc.cell:
				t.Errorf("%q: %d from cell %q, want an answer from %s", tc.lines, resps[0].status, resps[0].header.Get("X-Cell"), tc.cell)
			}
		}
	})

	t.Run("path and query reach the cell as sent", func(t *testing.T) {
		for _, key := range []string{"acme", "sl"} { // sl's endpoint ends in "/"
			e := r.get(t, "/p%2Fq/%7Euser//x?a=1&b=%20x&a=2", key).echo(t)
			if e.Path != "/p%2Fq/%7Euser//x" || e.Query != "a=1&b=%20x&a=2" {
				t.Errorf("key %s: cell saw path %q query %q, want /p%%2Fq/%%7Euser//x and a=1&b=%%20x&a=2", key, e.Path, e.Query)
			}
		}
	})

	t.Run("HEAD answers carry no body", func(t *testing.T) {
		// A HEAD then a GET on one connection: a stray body after the HEAD
		// answer would corrupt the second response.
		resps := rawSequence(t, r.listen,
			"HEAD /h HTTP/1.1\r\nHost: x\r\nX-Routing-Key: acme\r\n\r\n",
			"GET /g HTTP/1.1\r\nHost: x\r\nX-Routing-Key: acme\r\n\r\n")
		if resps[0].status != http.StatusOK || resps[1].status != http.StatusOK {
			t.Fatalf("want two 200s, got %v", statuses(resps))
		}
		if len(resps[0].body) != 0 || resps[0].header.Get("X-Cell") != "tier1" {
			t.Errorf("HEAD: body %q, X-Cell %q; want no body from tier1", resps[0].body, resps[0].header.Get("X-Cell"))
		}
		var e echo
		if err := json.Unmarshal(resps[1].body, &e); err != nil || e.Path != "/g" {
			t.Errorf("GET after HEAD: %v %s", err, resps[1].body)
		}
		// The same for an error the router makes itself.
		resps = rawSequence(t, r.listen,
			"HEAD /nokey HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /g HTTP/1.1\r\nHost: x\r\nX-Routing-Key: acme\r\n\r\n")
		if resps[0].status != http.StatusBadRequest || len(resps[0].body) != 0 || resps[1].status != http.StatusOK {
			t.Errorf("HEAD without a key then GET: got %v, HEAD body %q; want 400 without a body, then 200", statuses(resps), resps[0].body)
		}
	})

	t.Run("method and body reach the routed cell", func(t *testing.T) {
		rp := r.do(t, req{method: http.MethodPut, path: "/put", key: "visa", body: newPattern(4096), size: 4096})
		wantServed(t, rp, "visa", "dedicated", "")
		e := rp.echo(t)
		if e.Method != http.MethodPut || e.BodyBytes != 4096 || e.BodySHA256 != patternSHA256(4096) {
			t.Errorf("cell saw %s with %d bytes (sha %s), want PUT with 4096 bytes (sha %s)", e.Method, e.BodyBytes, e.BodySHA256, patternSHA256(4096))
		}
	})
}
