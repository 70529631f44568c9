package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// measureCapacity probes the target's closed-loop throughput, then climbs
// the open-loop staircase (fixed rates, then fractions of the probe) until
// a step is not sustained, and says what bound the last step.
func measureCapacity(ctx context.Context, e *env, sc *scenario.Scenario, setup *runSetup,
	l *load, run *report.Run) []metrics.Record {
	scale := sc.Scale(e.scale)
	st := sc.Steps
	stepLen := time.Duration(float64(st.StepMs)*scale) * time.Millisecond
	pause := time.Duration(float64(st.PauseMs)*scale) * time.Millisecond
	probeLen := time.Duration(float64(st.ProbeMs)*scale) * time.Millisecond
	s0 := setup.sample()
	origin := s0.at
	probe := l.closedLoop(st.ProbeConns, probeLen, origin)
	run.ProbeRPS = metrics.Summarize(probe, probeLen).Throughput
	all := probe
	// try runs one step, and once more if it is not sustained: on a
	// shared machine a single burst of foreign load can sink one step;
	// both tries are reported.
	try := func(rate int) bool {
		time.Sleep(pause)
		step, recs := capacityStep(sc, setup, l, rate, stepLen, origin)
		all = append(all, recs...)
		if !step.Sustained {
			run.Steps = append(run.Steps, step)
			time.Sleep(repeatPause)
			step, recs = capacityStep(sc, setup, l, rate, stepLen, origin)
			step.Retry = true
			all = append(all, recs...)
		}
		run.Steps = append(run.Steps, step)
		return step.Sustained
	}
	failed := 0
	for _, rate := range stepRates(st, run.ProbeRPS) {
		if ctx.Err() != nil {
			break
		}
		if !try(rate) {
			failed = rate
			break
		}
		run.MaxSustainedRPS = rate
	}
	// Bisect between the highest sustained step and the first failed one.
	for i := 0; i < st.Refine && failed > 0 && ctx.Err() == nil; i++ {
		mid := (run.MaxSustainedRPS + failed) / 200 * 100
		if mid <= run.MaxSustainedRPS || mid >= failed {
			break
		}
		if try(mid) {
			run.MaxSustainedRPS = mid
		} else {
			failed = mid
		}
	}
	run.Bound, run.BoundWhy = capacityBound(run, !setup.proxied())
	total := time.Since(origin)
	w := setup.between(s0, setup.sample(), len(all))
	run.OtherLoad, run.Router, run.Generator, run.Cells = w.otherLoad, w.router, w.generator, w.cells
	run.DurationMs = msOf(total)
	// The run's own summary is over the staircase's steps; its validity
	// is the steps' (the probe is closed loop and never late).
	run.Summary = metrics.Summarize(all[len(probe):], total-probeLen)
	run.Timeline = metrics.Timeline(all, total)
	return all
}

// stepRates are the staircase's rates: the fixed ones, then the fractions
// of the probe's throughput above the last fixed rate, rounded to 100
// req/s.
func stepRates(st *scenario.Steps, probe float64) []int {
	rates := append([]int(nil), st.Rates...)
	for _, f := range st.Fractions {
		r := int(math.Round(f*probe/100)) * 100
		if r >= 100 && (len(rates) == 0 || r > rates[len(rates)-1]) {
			rates = append(rates, r)
		}
	}
	return rates
}

// repeatPause lets an overloaded proxy and the generator drain their
// queues before a failed step is repeated.
const repeatPause = time.Second

// capacityStep runs one step of the staircase.
func capacityStep(sc *scenario.Scenario, setup *runSetup, l *load, rate int, d time.Duration, origin time.Time) (report.Step, []metrics.Record) {
	s0 := setup.sample()
	recs := l.openLoop(rate, sc.Steps.Conns, d, origin)
	w := setup.between(s0, setup.sample(), len(recs))
	st := report.Step{Rate: rate, Summary: metrics.Summarize(recs, d), Router: w.router, Generator: w.generator, Cells: w.cells,
		GeneratorSideBusy: w.generatorSideBusy, OtherLoad: w.otherLoad}
	st.Sustained, st.Why = sustained(st.Summary, rate, sc.SLO)
	return st, recs
}

// sustained: the step met the SLO, the offered rate was really served, and
// the generator kept its schedule (a late generator measures itself).
func sustained(s metrics.Summary, rate int, slo scenario.SLO) (bool, string) {
	misses := slo.Misses(s.SuccessRate, s.Latency.P99)
	switch {
	case !s.GeneratorKeptUp():
		return false, fmt.Sprintf("generator late on %.1f %% of sends", 100*s.LateFraction)
	case len(misses) > 0:
		return false, strings.Join(misses, ", ")
	case s.Throughput < 0.95*float64(rate):
		return false, "under 95 % of the offered rate answered"
	}
	return true, ""
}

// Saturation thresholds of the bound: a proxy at or over routerSaturated
// of its budget is the limit; a generator side at or over
// generatorSaturated of its CPUs may be.
const (
	routerSaturated    = 0.85
	generatorSaturated = 0.90
)

// capacityBound says what stopped the staircase, from its last step: the
// generator when its CPUs were saturated, or when it fell behind its
// schedule while the proxy still had budget left (always for the direct
// baseline, which has no proxy); the router when it used its budget while
// the generator side had CPU to spare. A proxy at its quota answers in
// bursts (it runs in slices of the quota period), and the generator's one
// core then sends some requests late behind a burst of answers: that
// lateness is the proxy's saturation showing, not the generator's limit.
func capacityBound(run *report.Run, direct bool) (string, string) {
	if len(run.Steps) == 0 {
		return report.BoundUnclear, "no step ran"
	}
	// The failed step nearest the capacity: the last one not sustained.
	var last *report.Step
	for i := range run.Steps {
		if !run.Steps[i].Sustained {
			last = &run.Steps[i]
		}
	}
	if last == nil {
		return report.BoundNotReached, fmt.Sprintf("every step up to %d req/s was sustained", run.Steps[len(run.Steps)-1].Rate)
	}
	gen := fmt.Sprintf("generator side %.0f %% busy, %.1f %% late sends", 100*last.GeneratorSideBusy, 100*last.Summary.LateFraction)
	if direct {
		return report.BoundGenerator, "no proxy: the generator and the cells are the ceiling (" + gen + ")"
	}
	router := "?"
	if last.Router != nil {
		router = fmt.Sprintf("%.0f %%", 100*last.Router.Utilization)
	}
	why := fmt.Sprintf("at %d req/s (%s): proxy %s of its budget, %s", last.Rate, last.Why, router, gen)
	switch {
	case last.GeneratorSideBusy >= generatorSaturated:
		return report.BoundGenerator, why
	case last.Router != nil && last.Router.Utilization >= routerSaturated:
		return report.BoundRouter, why
	case !last.Summary.GeneratorKeptUp():
		return report.BoundGenerator, why
	}
	return report.BoundUnclear, why
}
