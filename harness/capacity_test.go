package main

import (
	"fmt"
	"strings"
	"testing"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

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
