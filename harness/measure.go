package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
	"cellbench/internal/proc"
)

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuSample is the machine's busy CPU time and the part of it that belongs
// to this run (the harness itself, the cells, the router, the control
// plane); the difference over a run is load from elsewhere on the machine
// (other users, builds), which makes numbers noisy and is reported.
type cpuSample struct{ machine, ours time.Duration }

// otherLoad is the CPU used outside this run between two samples, in
// cores (1.0 = one core fully busy with something else).
func otherLoad(a, b cpuSample, wall time.Duration) float64 {
	other := (b.machine - a.machine) - (b.ours - a.ours)
	if other < 0 || wall <= 0 {
		return 0
	}
	return other.Seconds() / wall.Seconds()
}

// sample is the CPU of the three parties of a run at one instant.
type sample struct {
	router, generator, cells procStats
	all                      cpuSample
	at                       time.Time
}

// sample reads each process of the run once: its own figures, and their
// sum for the machine's foreign load.
func (s *runSetup) sample() sample {
	sm := sample{at: time.Now()}
	sm.all.machine, _ = proc.MachineBusy()
	read := func(p *proc.Process) procStats {
		if p == nil || p.Exited() {
			return procStats{}
		}
		st, _ := readProcStats(p.PID())
		return st
	}
	sm.router, sm.cells = read(s.router), read(s.mocks)
	if s.router != nil {
		sm.router.Throttled = s.env.quota.throttled()
	}
	sm.generator, _ = readProcStats(os.Getpid())
	sm.all.ours = sm.router.CPU + sm.cells.CPU + sm.generator.CPU + read(s.cp).CPU
	if s.remote != nil {
		// After the machine's sum: a remote router's CPU is not this host's.
		sm.router = s.remote.stats()
	}
	return sm
}

// window is what the three parties used between two samples for requests.
type window struct {
	router, generator, cells *report.ProcStats
	// generatorSideBusy is the generator and the cells' CPU over the
	// generator CPUs.
	generatorSideBusy float64
	otherLoad         float64
}

func (s *runSetup) between(a, b sample, requests int) window {
	wall := b.at.Sub(a.at)
	e := s.env
	w := window{
		generator: procStatsOf(a.generator, b.generator, requests, wall, float64(e.generatorCores)),
		cells:     procStatsOf(a.cells, b.cells, requests, wall, float64(e.generatorCores)),
		otherLoad: otherLoad(a.all, b.all, wall),
	}
	w.generatorSideBusy = w.generator.Utilization + w.cells.Utilization
	if s.proxied() {
		w.router = procStatsOf(a.router, b.router, requests, wall, e.routerCores)
	}
	return w
}

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
