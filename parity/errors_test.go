package parity

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// Contract §3: "Errors the router makes itself carry the same headers where
// they are known". Each case pins the exact set of router headers: what the
// router knows at the point it refuses (no X-Routed-To before a placement
// serves, no X-Upstream-Attempts before an attempt) and nothing else.
func TestRouterErrorHeaders(t *testing.T) {
	t.Parallel()
	c := startCells(t, "a")
	refused := "http://" + refusedAddr(t)
	hc := healthCheck(100, 80, 1, 1)
	r := startRouter(t, configDoc("errors-1", "down",
		map[string]string{"big": "a", "lim": "lim", "un": "un", "slow": "slow", "conc": "conc", "conn": "conn"},
		doc{
			"a":    placement("shared", c.endpoint("a"), doc{"max_request_body_bytes": 10}),
			"lim":  placement("dedicated", c.endpoint("a"), doc{"rate_limit": rateLimit(0.1, 1, "routing_key")}),
			"un":   placement("dedicated", refused, doc{"health_check": hc}),
			"slow": placement("shared", c.endpoint("a"), doc{"timeouts": doc{"response_header_ms": 100}}),
			"conc": placement("shared", c.endpoint("a"), doc{"concurrency_limit": 1}),
			"conn": placement("shared", refused, nil),
			// The default placement is unhealthy too, so "un" has nowhere to go.
			"down": placement("shared", refused, doc{"health_check": hc}),
		}))
	eventually(t, 3*time.Second, 20*time.Millisecond, "un and down unhealthy", func() (bool, string) {
		ups := r.upstreams(t)
		return ups["un"].Health == "unhealthy" && ups["down"].Health == "unhealthy", ups["un"].Health + "/" + ups["down"].Health
	})
	// The token of "lim" is spent and one request holds "conc" busy.
	if rp := r.get(t, "/", "lim"); rp.status != http.StatusOK {
		t.Fatalf("first request to lim: %d", rp.status)
	}
	slow := r.sendAsync(req{path: "/?delay_ms=1500", key: "conc"})
	eventually(t, 3*time.Second, 10*time.Millisecond, "conc busy", func() (bool, string) {
		return c.counters(t, "a").Inflight == 1, ""
	})

	common := map[string]string{"X-Router": routerName, "X-Config-Version": "errors-1"}
	cases := []struct {
		name   string
		q      req
		status int
		code   string
		want   map[string]string // router headers besides X-Router, X-Config-Version, X-Request-Id
	}{
		{"missing key", req{path: "/"}, 400, "missing_routing_key", nil},
		{"rate limited", req{path: "/", key: "lim"}, 429, "rate_limited",
			map[string]string{"X-Route-Reason": "dedicated", "Retry-After": "10"}},
		{"no placement", req{path: "/", key: "un"}, 503, "no_available_placement",
			map[string]string{"X-Route-Reason": "dedicated", "X-Failover-Reason": "unhealthy"}},
		{"concurrency", req{path: "/", key: "conc"}, 503, "concurrency_limited",
			map[string]string{"X-Route-Reason": "shared", "X-Routed-To": "conc", "X-Circuit-State": "closed", "Retry-After": "1"}},
		{"body too large", req{method: http.MethodPost, path: "/", key: "big", body: newPattern(11), size: 11}, 413, "body_too_large",
			map[string]string{"X-Route-Reason": "shared", "X-Routed-To": "a", "X-Circuit-State": "closed"}},
		{"connect error", req{path: "/", key: "conn"}, 502, "upstream_connect_error",
			map[string]string{"X-Route-Reason": "shared", "X-Routed-To": "conn", "X-Circuit-State": "closed", "X-Upstream-Attempts": "1"}},
		{"timeout", req{path: "/?delay_ms=1000", key: "slow"}, 504, "upstream_timeout",
			map[string]string{"X-Route-Reason": "shared", "X-Routed-To": "slow", "X-Circuit-State": "closed", "X-Upstream-Attempts": "1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rp := r.do(t, tc.q)
			wantRouterError(t, rp, tc.status, tc.code)
			want := map[string]string{}
			for k, v := range common {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			wantHeaders(t, rp, want)
			// Server-Timing is the upstream time of the last attempt: there
			// whenever an attempt was made, even one that got no response.
			attempted := want["X-Upstream-Attempts"] != ""
			if attempted && !serverTiming.MatchString(rp.header.Get("Server-Timing")) {
				t.Errorf("Server-Timing %q after an upstream attempt, want upstream;dur=<ms>", rp.header.Get("Server-Timing"))
			}
			var extra []string
			for name := range rp.header {
				if _, ok := want[name]; ok || name == "X-Request-Id" || attempted && name == "Server-Timing" {
					continue
				}
				if strings.HasPrefix(name, "X-") || name == "Retry-After" || name == "Server-Timing" {
					extra = append(extra, name)
				}
			}
			sort.Strings(extra)
			if len(extra) > 0 {
				t.Errorf("headers the router cannot know at this point, or that the contract does not name: %v", extra)
			}
		})
	}
	if res := <-slow; res.err != nil || res.status != http.StatusOK {
		t.Errorf("the request holding conc: %v %d", res.err, res.status)
	}
}
