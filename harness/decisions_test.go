package main

import (
	"strings"
	"testing"

	"cellbench/config"
	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func TestParseTestEvents(t *testing.T) {
	lines := strings.Join([]string{
		`{"Action":"start","Package":"cellbench/parity"}`,
		`{"Action":"run","Package":"cellbench/parity","Test":"TestA"}`,
		`{"Action":"pass","Package":"cellbench/parity","Test":"TestA/sub"}`,
		`{"Action":"pass","Package":"cellbench/parity","Test":"TestA"}`,
		`{"Action":"fail","Package":"cellbench/parity","Test":"TestB/x"}`,
		`{"Action":"fail","Package":"cellbench/parity","Test":"TestB"}`,
		`{"Action":"skip","Package":"cellbench/parity","Test":"TestC"}`,
		`{"Action":"output","Package":"cellbench/parity","Test":"TestC","Output":"--- SKIP"}`,
		`not json`,
		`{"Action":"fail","Package":"cellbench/parity"}`,
	}, "\n")
	var res report.ParityResult
	n := parseTestEvents(strings.NewReader(lines), &res)
	if n != 5 || res.Pass != 2 || res.Fail != 2 || res.Skip != 1 {
		t.Fatalf("n=%d %+v", n, res)
	}
	if strings.Join(res.Failed, ",") != "TestB,TestB/x" || strings.Join(res.Skipped, ",") != "TestC" {
		t.Fatalf("names %v %v", res.Failed, res.Skipped)
	}
}

func TestSustained(t *testing.T) {
	slo := scenario.SLO{MinSuccess: 0.999, MaxP99Ms: 25}
	ok := metrics.Summary{SuccessRate: 1, Throughput: 960, Latency: metrics.Latency{P99: 10}}
	if s, why := sustained(ok, 1000, slo); !s {
		t.Fatalf("96 %% answered within the SLO not sustained: %s", why)
	}
	cases := map[string]metrics.Summary{
		"success below": {SuccessRate: 0.998, Throughput: 1000, Latency: metrics.Latency{P99: 10}},
		"p99 above":     {SuccessRate: 1, Throughput: 1000, Latency: metrics.Latency{P99: 26}},
		"under 95 %":    {SuccessRate: 1, Throughput: 940, Latency: metrics.Latency{P99: 10}},
	}
	for want, sum := range cases {
		if s, why := sustained(sum, 1000, slo); s || !strings.Contains(why, want) {
			t.Errorf("%s: sustained=%v why=%q", want, s, why)
		}
	}
}

func TestPlacementExpectations(t *testing.T) {
	cfg := &config.Config{DefaultPlacement: "tier3", Routes: map[string]string{"acme": "tier1", "visa": "visa"}}
	targets := []scenario.Target{{RoutingKey: "acme", Weight: 2}, {RoutingKey: "visa", Weight: 1}, {RoutingKey: "other", Weight: 1}}
	exp := expectedPlacements(cfg, targets)
	if exp["acme"] != "tier1" || exp["visa"] != "visa" || exp["other"] != "tier3" {
		t.Fatalf("expected %v", exp)
	}
	shares := expectedShares(exp, targets)
	if shares["tier1"] != 0.5 || shares["visa"] != 0.25 || shares["tier3"] != 0.25 {
		t.Fatalf("shares %v", shares)
	}
	recs := []metrics.Record{
		{Code: 200, Target: 0, Served: "tier1"},
		{Code: 200, Target: 0, Served: "tier2"},                        // misrouted
		{Code: 200, Target: 1, Served: "tier3", Failover: "unhealthy"}, // failover, not misrouted
		{Code: 502, Target: 2, Served: "tier1"},                        // not a success
		{Code: 200, Target: 2, Served: "tier3"},
	}
	if n := misrouted(exp, targets, recs); n != 1 {
		t.Fatalf("misrouted %d, want 1", n)
	}
}
