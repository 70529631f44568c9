package main

import (
	"fmt"
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
		`{"Action":"output","Package":"cellbench/parity","Test":"TestA/sub","Output":"    x_test.go:9: documented divergence: pingora …\n"}`,
		`{"Action":"output","Package":"cellbench/parity","Test":"TestA/sub","Output":"    x_test.go:9: documented divergence: again\n"}`,
		`not json`,
		`{"Action":"fail","Package":"cellbench/parity"}`,
	}, "\n")
	var res report.ParityResult
	n := parseTestEvents(strings.NewReader(lines), &res)
	if n != 5 || res.Pass != 2 || res.Fail != 2 || res.Skip != 1 {
		t.Fatalf("n=%d %+v", n, res)
	}
	if strings.Join(res.Failed, ",") != "TestB,TestB/x" || strings.Join(res.Skipped, ",") != "TestC" || strings.Join(res.Divergent, ",") != "TestA/sub" {
		t.Fatalf("names %v %v %v", res.Failed, res.Skipped, res.Divergent)
	}
}

func TestSustained(t *testing.T) {
	slo := scenario.SLO{MinSuccess: 0.999, MaxP99Ms: 25}
	ok := metrics.Summary{SuccessRate: 1, Throughput: 960, Latency: metrics.Latency{P99: 10}}
	if s, why := sustained(ok, 1000, slo); !s {
		t.Fatalf("96 %% answered within the SLO not sustained: %s", why)
	}
	cases := map[string]metrics.Summary{
		"success 99.800 % < 99.900 %": {SuccessRate: 0.998, Throughput: 1000, Latency: metrics.Latency{P99: 10}},
		"p99 26.00 ms > 25 ms":        {SuccessRate: 1, Throughput: 1000, Latency: metrics.Latency{P99: 26}},
		"under 95 %":                  {SuccessRate: 1, Throughput: 940, Latency: metrics.Latency{P99: 10}},
		"generator late":              {SuccessRate: 1, Throughput: 1000, Latency: metrics.Latency{P99: 10}, LateFraction: 0.02},
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

func TestWrkScriptAndItsLine(t *testing.T) {
	script := wrkScript([]scenario.Target{
		{RoutingKey: "acme", Method: "GET", Path: "/a", Weight: 2},
		{RoutingKey: "visa", Method: "POST", Path: "/b", BodyBytes: 3, Headers: map[string]string{"Content-Type": "text/plain"}, Weight: 1},
	})
	for _, want := range []string{
		`wrk.format("GET", "/a", {["X-Routing-Key"] = "acme"}, nil)`,
		`wrk.format("POST", "/b", {["X-Routing-Key"] = "visa", ["Content-Type"] = "text/plain"}, string.rep("x", 3))`,
		"function done(summary, latency, requests)",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if n := strings.Count(script, `"/a"`); n != 2 {
		t.Errorf("weight 2 gives %d entries", n)
	}
	w, err := parseWrkDone("Running 5s test\nCROSSCHECK {\"requests\":1010,\"duration_us\":5000000,\"p50_us\":250,\"mean_us\":310.5,\"errors\":10}\n")
	if err != nil || w.rps() != 200 || w.P50Us != 250 || w.MeanUs != 310.5 {
		t.Fatalf("%+v %v", w, err)
	}
	if _, err := parseWrkDone("no line"); err == nil {
		t.Fatal("missing line accepted")
	}
}

func TestStepRatesFollowTheProbe(t *testing.T) {
	st := &scenario.Steps{Rates: []int{1000}, Fractions: []float64{0.5, 0.9, 1.1}}
	got := stepRates(st, 10_040)
	want := []int{1000, 5000, 9000, 11000}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	// Fractions under the last fixed rate are left out.
	if got := stepRates(st, 1500); fmt.Sprint(got) != "[1000 1400 1700]" {
		t.Fatalf("%v", got)
	}
}

func TestCapacityBound(t *testing.T) {
	step := func(sustained bool, routerUtil, genBusy, late float64) report.Step {
		return report.Step{Rate: 5000, Sustained: sustained, Why: "p99 31.00 ms > 25 ms", GeneratorSideBusy: genBusy,
			Router: &report.ProcStats{Utilization: routerUtil}, Summary: metrics.Summary{LateFraction: late}}
	}
	cases := []struct {
		name   string
		last   report.Step
		direct bool
		want   string
	}{
		{"proxy saturated, generator idle", step(false, 0.97, 0.5, 0), false, report.BoundRouter},
		{"generator saturated", step(false, 0.97, 0.95, 0), false, report.BoundGenerator},
		{"generator late, proxy with budget left", step(false, 0.6, 0.5, 0.02), false, report.BoundGenerator},
		{"late behind a saturated proxy's bursts", step(false, 0.97, 0.5, 0.02), false, report.BoundRouter},
		{"neither", step(false, 0.5, 0.5, 0), false, report.BoundUnclear},
		{"every step held", step(true, 0.5, 0.5, 0), false, report.BoundNotReached},
		{"direct", step(false, 0, 0.5, 0), true, report.BoundGenerator},
	}
	for _, c := range cases {
		run := &report.Run{Steps: []report.Step{c.last}}
		if got, why := capacityBound(run, c.direct); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, why, c.want)
		}
	}
	// After a bisection the last step may be a sustained one: the bound
	// comes from the last failed step.
	run := &report.Run{Steps: []report.Step{step(true, 0.5, 0.5, 0), step(false, 0.97, 0.5, 0), step(true, 0.9, 0.5, 0)}}
	if got, _ := capacityBound(run, false); got != report.BoundRouter {
		t.Errorf("bisected staircase: %s", got)
	}
}
