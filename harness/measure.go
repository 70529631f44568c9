package main

import (
	"context"
	"math"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// warmUp is unmeasured load before every measured run: it opens the
// keep-alive connections and lets every proxy reach a steady state.
func warmUp(sc *scenario.Scenario, l *load) {
	origin := time.Now()
	switch {
	case sc.Steps != nil:
		l.closedLoop(sc.Steps.ProbeConns, warmup, origin)
	case sc.ClosedLoop():
		l.closedLoop(sc.Connections(), warmup, origin)
	case sc.UsesVegeta():
		l.vegetaOpenLoop(sc.Rate, warmup, origin)
	default:
		l.openLoop(sc.Rate, sc.Connections(), warmup, origin)
	}
}

// measureSteady runs the scenario's load for its duration while the
// timeline's actions run, then analyses the records.
func measureSteady(ctx context.Context, e *env, sc *scenario.Scenario, setup *runSetup, target string,
	l *load, run *report.Run) []metrics.Record {
	d := sc.Duration(e.scale)
	s0 := setup.sample()
	origin := s0.at
	smp := startSampler(setup.observed(), origin)
	done := make(chan []report.Action, 1)
	go func() { done <- runTimeline(ctx, sc, setup, origin, sc.Scale(e.scale)) }()
	stopAttack := setup.startSlowHeads(ctx, sc, d, run)
	var recs []metrics.Record
	switch {
	case sc.ClosedLoop():
		recs = l.closedLoop(sc.Connections(), d, origin)
	case sc.UsesVegeta():
		recs = l.vegetaOpenLoop(sc.Rate, d, origin)
	default:
		recs = l.openLoop(sc.Rate, sc.Connections(), d, origin)
	}
	actions := <-done
	stopAttack()
	run.Samples = smp.finish()
	run.Growth = growth(run.Samples, d)
	if run.Attack != nil {
		for _, sm := range run.Samples {
			run.Attack.PeakFDs = max(run.Attack.PeakFDs, sm.FDs)
		}
	}
	w := setup.between(s0, setup.sample(), len(recs))
	run.OtherLoad, run.Router, run.Generator, run.Cells = w.otherLoad, w.router, w.generator, w.cells
	summarizeSteady(run, recs, d)
	run.Actions = analyseActions(actions, recs, d, setup.cfg.Version)
	run.Phases = chaosPhases(actions, recs, d)
	return recs
}

// summarizeSteady is a steady run's figures from its records over its
// length d.
func summarizeSteady(run *report.Run, recs []metrics.Record, d time.Duration) {
	run.DurationMs = msOf(d)
	run.Summary = metrics.Summarize(recs, d)
	run.LongestOutageMs = msOf(metrics.LongestOutage(recs, d))
	run.Timeline = metrics.Timeline(recs, d)
}

// reloadWindow is how long after a config change its latency impact is
// looked for.
const reloadWindow = 500 * time.Millisecond

// analyseActions attaches to each action what it caused in the records.
func analyseActions(actions []report.Action, recs []metrics.Record, d time.Duration, initialVersion string) []report.Action {
	at := func(a report.Action) time.Duration { return time.Duration(a.AtMs * float64(time.Millisecond)) }
	// Versions rank in the order they were applied, after the bootstrap.
	rank := map[string]int{initialVersion: 0}
	for _, a := range actions {
		if a.Version != "" && !a.Invalid && a.Error == "" {
			if _, dup := rank[a.Version]; !dup {
				rank[a.Version] = len(rank)
			}
		}
	}
	for i := range actions {
		a := &actions[i]
		if a.Error != "" {
			continue
		}
		switch a.Kind {
		case scenario.ActionConfigWrite, scenario.ActionCPPut:
			if a.Invalid {
				n := 0
				for _, r := range recs {
					if r.Version == a.Version {
						n++
					}
				}
				a.SeenInvalid = n
				continue
			}
			v := metrics.VersionVisibility(recs, rank, a.Version, at(*a))
			a.Visibility = &v
			p := metrics.PhaseOf("", recs, at(*a), min(at(*a)+reloadWindow, d))
			a.WindowP99Ms = &p.P99
		case scenario.ActionCPKill, scenario.ActionCPStart:
			until := d
			if i+1 < len(actions) {
				until = at(actions[i+1])
			}
			ph := metrics.PhaseOf("", recs, at(*a), until)
			failed := ph.Requests - int(math.Round(ph.SuccessRate*float64(ph.Requests)))
			a.FailedUntilNext = &failed
		case scenario.ActionChaos, scenario.ActionChaosReset:
			until := nextChaos(actions, i, d)
			if a.Kind == scenario.ActionChaos {
				f := metrics.Transition(recs, at(*a), until, func(r metrics.Record) bool { return r.Failover != "" })
				e := metrics.Transition(recs, at(*a), until, func(r metrics.Record) bool { return !r.Success() })
				a.FirstFailoverMs, a.FirstErrorMs = &f, &e
			} else {
				cell := a.Detail[:len(a.Detail)-len(" reset")]
				b := metrics.Transition(recs, at(*a), until, func(r metrics.Record) bool {
					return r.Served == cell && r.Failover == "" && r.Success()
				})
				a.BackMs = &b
			}
		}
	}
	return actions
}

func nextChaos(actions []report.Action, i int, d time.Duration) time.Duration {
	for _, b := range actions[i+1:] {
		if b.Kind == scenario.ActionChaos || b.Kind == scenario.ActionChaosReset {
			return time.Duration(b.AtMs * float64(time.Millisecond))
		}
	}
	return d
}

// chaosPhases splits the run at every chaos action: one phase per state of
// the cells.
func chaosPhases(actions []report.Action, recs []metrics.Record, d time.Duration) []metrics.Phase {
	var phases []metrics.Phase
	from, name := time.Duration(0), "before any chaos"
	for _, a := range actions {
		if a.Kind != scenario.ActionChaos && a.Kind != scenario.ActionChaosReset {
			continue
		}
		to := time.Duration(a.AtMs * float64(time.Millisecond))
		phases = append(phases, metrics.PhaseOf(name, recs, from, to))
		from, name = to, a.Detail
	}
	if phases == nil {
		return nil
	}
	return append(phases, metrics.PhaseOf(name, recs, from, d))
}
