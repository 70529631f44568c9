package parity

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cellbench/config"
)

// contractMetrics are the metric names of contract §6, all exposed from the start.
var contractMetrics = []string{
	"cellbench_requests_total",
	"cellbench_request_duration_seconds",
	"cellbench_upstream_healthy",
	"cellbench_circuit_state",
	"cellbench_config_info",
	"cellbench_config_reloads_total",
	"cellbench_control_plane_connected",
	"cellbench_rate_limited_total",
	"cellbench_retries_total",
	"cellbench_client_connections",
	"cellbench_client_connections_dropped_total",
}

// Contract §6: the admin listener.
func TestAdmin(t *testing.T) {
	t.Parallel()
	// Distinctive routing keys: none of them may ever show up in /metrics.
	const (
		keyShared  = "key-acme-7f3a91"
		keyLimited = "key-limited-5be2"
		keyRetry   = "key-retry-c0d4"
		keyUnknown = "key-unrouted-99e1"
	)
	c := startCells(t, "p", "d", "rl")
	refused := refusedAddr(t)
	cfg := configDoc("admin-1", "d",
		map[string]string{keyShared: "p", keyLimited: "rl", keyRetry: "rt"},
		doc{
			"p":  placement("shared", c.endpoint("p"), doc{"health_check": healthCheck(200, 100, 2, 2)}),
			"d":  placement("shared", c.endpoint("d"), nil),
			"rl": placement("dedicated", c.endpoint("rl"), doc{"rate_limit": rateLimit(0.1, 1, "routing_key")}),
			"rt": placement("shared", "http://"+refused+"/", doc{"retry": retry(2), "circuit_breaker": breaker(50, 1000)}),
		})
	r := startRouter(t, cfg)
	names := []string{"p", "d", "rl", "rt"}

	t.Run("healthz", func(t *testing.T) {
		resp, err := r.http.Get("http://" + r.admin + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || len(body) != 1 || body["status"] != "ok" {
			t.Errorf("/healthz: %s %s, want 200 {\"status\":\"ok\"}", resp.Status, b)
		}
	})

	t.Run("metrics are all exposed from the start", func(t *testing.T) {
		m := r.metrics(t)
		if !strings.HasPrefix(m.contentType, "text/plain") {
			t.Errorf("Content-Type %q, want the Prometheus text format (text/plain)", m.contentType)
		}
		for _, name := range contractMetrics {
			if !m.exposes(name) {
				t.Errorf("%s is not exposed before any traffic", name)
			}
		}
		for _, result := range []string{"applied", "rejected"} {
			if len(m.series("cellbench_config_reloads_total", labels{"result": result})) != 1 {
				t.Errorf("cellbench_config_reloads_total{result=%q} missing", result)
			}
		}
		if v := m.value(t, "cellbench_config_reloads_total", labels{"result": "rejected"}); v != 0 {
			t.Errorf("reloads_total{rejected} = %v at start, want 0", v)
		}
		if v := m.value(t, "cellbench_config_info", labels{"version": "admin-1", "source": "file"}); v != 1 {
			t.Errorf("cellbench_config_info{version=admin-1,source=file} = %v, want 1", v)
		}
		if n := len(m.series("cellbench_config_info", nil)); n != 1 {
			t.Errorf("cellbench_config_info has %d series, want only the live version", n)
		}
		if v := m.value(t, "cellbench_control_plane_connected", nil); v != 0 {
			t.Errorf("cellbench_control_plane_connected = %v without a control plane, want 0", v)
		}
		// Lead decision: the series a missing_routing_key rejection counts
		// exists at zero, so the name is exposed before any request.
		if v := m.value(t, "cellbench_requests_total", labels{"placement": "", "code": "400", "route_reason": ""}); v != 0 {
			t.Errorf("cellbench_requests_total{placement=\"\",code=\"400\",route_reason=\"\"} = %v at start, want 0", v)
		}
		for _, p := range names {
			sel := labels{"placement": p}
			if v := m.value(t, "cellbench_request_duration_seconds", sel); v != 0 {
				t.Errorf("cellbench_request_duration_seconds{placement=%s} count = %v at start, want a zero histogram", p, v)
			}
			if v := m.value(t, "cellbench_upstream_healthy", sel); v != 1 {
				t.Errorf("cellbench_upstream_healthy{placement=%s} = %v, want 1", p, v)
			}
			if v := m.value(t, "cellbench_circuit_state", sel); v != 0 {
				t.Errorf("cellbench_circuit_state{placement=%s} = %v, want 0", p, v)
			}
			for _, name := range []string{"cellbench_rate_limited_total", "cellbench_retries_total"} {
				if v := m.value(t, name, sel); v != 0 {
					t.Errorf("%s{placement=%s} = %v at start, want 0", name, p, v)
				}
			}
		}
	})

	t.Run("debug config", func(t *testing.T) {
		var dc debugConfig
		r.getJSON(t, "/debug/config", &dc)
		var raw map[string]json.RawMessage
		r.getJSON(t, "/debug/config", &raw)
		for _, f := range []string{"version", "source", "applied_at", "last_rejected", "config"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("/debug/config has no %q", f)
			}
		}
		if dc.Version != "admin-1" || dc.Source != "file" {
			t.Errorf("/debug/config version %q source %q, want admin-1 file", dc.Version, dc.Source)
		}
		if at, err := time.Parse(time.RFC3339Nano, dc.AppliedAt); err != nil || time.Since(at).Abs() > time.Minute {
			t.Errorf("applied_at %q, want the RFC 3339 time the config was applied", dc.AppliedAt)
		}
		if string(raw["last_rejected"]) != "null" {
			t.Errorf("last_rejected %s, want null", raw["last_rejected"])
		}
		// The config shown is the applied document: it must parse, and
		// carry what was sent.
		got, err := config.Parse(dc.Config)
		if err != nil {
			t.Fatalf("/debug/config config does not parse: %v\n%s", err, dc.Config)
		}
		if got.Version != "admin-1" || got.DefaultPlacement != "d" || len(got.Routes) != 3 || got.Routes[keyLimited] != "rl" {
			t.Errorf("/debug/config config %+v differs from the document", got)
		}
		for _, p := range names {
			if got.Placements[p] == nil {
				t.Errorf("/debug/config config lacks placement %s", p)
			}
		}
	})

	t.Run("debug upstreams", func(t *testing.T) {
		var raw struct {
			Placements map[string]map[string]json.RawMessage `json:"placements"`
		}
		r.getJSON(t, "/debug/upstreams", &raw)
		ups := r.upstreams(t)
		if len(ups) != len(names) {
			t.Errorf("/debug/upstreams has %d placements, want %d", len(ups), len(names))
		}
		endpoints := map[string]string{"p": c.endpoint("p"), "d": c.endpoint("d"), "rl": c.endpoint("rl"), "rt": "http://" + refused}
		for _, p := range names {
			st, ok := ups[p]
			if !ok {
				t.Errorf("/debug/upstreams lacks %s", p)
				continue
			}
			for _, f := range []string{"endpoint", "health", "circuit", "inflight"} {
				if _, ok := raw.Placements[p][f]; !ok {
					t.Errorf("/debug/upstreams %s has no %q", p, f)
				}
			}
			if strings.TrimSuffix(st.Endpoint, "/") != endpoints[p] {
				t.Errorf("%s endpoint %q, want %q", p, st.Endpoint, endpoints[p])
			}
			if st.Health != "healthy" || st.Circuit != "closed" || st.Inflight == nil || *st.Inflight != 0 {
				t.Errorf("%s: %+v, want healthy, closed, 0 in flight", p, st)
			}
		}
	})

	t.Run("metrics move with traffic", func(t *testing.T) {
		before := r.metrics(t)
		reqsBefore := seriesValue(t, before, "cellbench_requests_total", labels{"placement": "p", "code": "200", "route_reason": "shared"})
		sumBefore := histogramSum(before, "cellbench_request_duration_seconds", labels{"placement": "d"})
		durBefore := seriesValue(t, before, "cellbench_request_duration_seconds", labels{"placement": "p"})
		for range 3 {
			wantServed(t, r.get(t, "/", keyShared), "p", "shared", "")
		}
		wantServed(t, r.get(t, "/?delay_ms=200", keyUnknown), "d", "default", "")
		var limited int
		for range 3 {
			if rp := r.get(t, "/", keyLimited); rp.status == http.StatusTooManyRequests {
				limited++
			}
		}
		wantRouterError(t, r.get(t, "/", keyRetry), http.StatusBadGateway, "upstream_connect_error")
		wantRouterError(t, r.get(t, "/", ""), http.StatusBadRequest, "missing_routing_key")
		c.chaos(t, "p", doc{"health": "fail"})
		eventually(t, 3*time.Second, 20*time.Millisecond, "upstream_healthy{p} 0", func() (bool, string) {
			return seriesValue(t, r.metrics(t), "cellbench_upstream_healthy", labels{"placement": "p"}) == 0, ""
		})

		m := r.metrics(t)
		if d := seriesValue(t, m, "cellbench_requests_total", labels{"placement": "p", "code": "200", "route_reason": "shared"}) - reqsBefore; d != 3 {
			t.Errorf("requests_total{p,200,shared} moved by %v, want 3", d)
		}
		if v := seriesValue(t, m, "cellbench_requests_total", labels{"placement": "d", "code": "200", "route_reason": "default"}); v != 1 {
			t.Errorf("requests_total{d,200,default} = %v, want 1", v)
		}
		if d := seriesValue(t, m, "cellbench_request_duration_seconds", labels{"placement": "p"}) - durBefore; d != 3 {
			t.Errorf("request_duration_seconds{p} count moved by %v, want 3", d)
		}
		if d := histogramSum(m, "cellbench_request_duration_seconds", labels{"placement": "d"}) - sumBefore; d < 0.195 || d > 5 {
			t.Errorf("request_duration_seconds{d} sum moved by %v for one 200 ms request: want about 0.2 (seconds)", d)
		}
		if v := seriesValue(t, m, "cellbench_requests_total", labels{"placement": "", "code": "400", "route_reason": ""}); v != 1 {
			t.Errorf("requests_total{\"\",400,\"\"} = %v after one missing_routing_key, want 1", v)
		}
		if v := seriesValue(t, m, "cellbench_rate_limited_total", labels{"placement": "rl"}); v != float64(limited) || limited == 0 {
			t.Errorf("rate_limited_total{rl} = %v, %d requests were answered 429 (want equal and > 0)", v, limited)
		}
		if v := seriesValue(t, m, "cellbench_retries_total", labels{"placement": "rt"}); v != 1 {
			t.Errorf("retries_total{rt} = %v, want 1", v)
		}
		if v := seriesValue(t, m, "cellbench_circuit_state", labels{"placement": "rt"}); v != 0 {
			t.Errorf("circuit_state{rt} = %v after 2 of 50 failures, want 0", v)
		}
		// Every request above has been answered (429, 502 and 400 included);
		// the router may release a slot just after its answer left.
		eventually(t, time.Second, 20*time.Millisecond, "inflight 0 everywhere", func() (bool, string) {
			for name, st := range r.upstreams(t) {
				if st.Inflight == nil || *st.Inflight != 0 {
					return false, name + " still has requests in flight (or no inflight field)"
				}
			}
			return true, ""
		})
		for _, key := range []string{keyShared, keyLimited, keyRetry, keyUnknown} {
			if strings.Contains(m.raw, key) {
				t.Errorf("routing key %q appears in /metrics", key)
			}
		}
		for name, fam := range m.families {
			for _, s := range fam.GetMetric() {
				for _, lp := range s.GetLabel() {
					if lp.GetName() == "routing_key" || lp.GetName() == "key" {
						t.Errorf("%s has a %s label", name, lp.GetName())
					}
				}
			}
		}
	})
}
