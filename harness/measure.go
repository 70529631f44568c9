package main

import (
	"context"
	"math"
	"net/http"
	"os"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuSample is the machine's busy CPU time and the part of it that belongs
// to this run (the harness itself, the cells, the router, the control
// plane); the difference over a run is load from elsewhere on the machine
// (other users, builds), which makes numbers noisy and is reported.
type cpuSample struct{ machine, ours time.Duration }

func (s *runSetup) cpuSample() cpuSample {
	var c cpuSample
	c.machine, _ = machineBusy()
	self, _ := readProcStats(os.Getpid())
	c.ours = self.CPU
	for _, p := range []*proc{s.mocks, s.router, s.cp} {
		if p != nil && !p.exited() {
			st, _ := readProcStats(p.pid())
			c.ours += st.CPU
		}
	}
	return c
}

// otherLoad is the CPU used outside this run between two samples, in
// cores (1.0 = one core fully busy with something else).
func otherLoad(a, b cpuSample, wall time.Duration) float64 {
	other := (b.machine - a.machine) - (b.ours - a.ours)
	if other < 0 || wall <= 0 {
		return 0
	}
	return other.Seconds() / wall.Seconds()
}

func (s *runSetup) routerSample() procStats {
	if s.router == nil {
		return procStats{}
	}
	st, _ := readProcStats(s.router.pid())
	return st
}

// measureSteady runs a constant-rate load for the scenario's duration while
// the timeline's actions run, then analyses the records.
func measureSteady(ctx context.Context, e *env, sc *scenario.Scenario, setup *runSetup, target string,
	client *http.Client, tr vegeta.Targeter, run *report.Run) []metrics.Record {
	d := sc.Duration(e.scale)
	before := setup.routerSample()
	cpu0 := setup.cpuSample()
	origin := time.Now()
	done := make(chan []report.Action, 1)
	go func() { done <- runTimeline(ctx, sc, setup, target, origin, sc.Scale(e.scale)) }()
	recs := attack(client, tr, sc.Rate, d, origin)
	actions := <-done
	run.OtherLoad = otherLoad(cpu0, setup.cpuSample(), time.Since(origin))
	if setup.router != nil {
		run.Router = routerStats(before, setup.routerSample(), len(recs), d, e.workers)
	}
	run.DurationMs = msOf(d)
	run.Summary = metrics.Summarize(recs, d)
	run.Timeline = metrics.Timeline(recs, d)
	run.Actions = analyseActions(actions, recs, d, setup.cfg.Version)
	run.Phases = chaosPhases(actions, recs, d)
	return recs
}

// measureCapacity climbs the rate staircase until a step is not sustained.
func measureCapacity(ctx context.Context, e *env, sc *scenario.Scenario, setup *runSetup,
	client *http.Client, tr vegeta.Targeter, run *report.Run) []metrics.Record {
	scale := sc.Scale(e.scale)
	step := time.Duration(float64(sc.Steps.StepMs)*scale) * time.Millisecond
	pause := time.Duration(float64(sc.Steps.PauseMs)*scale) * time.Millisecond
	var all []metrics.Record
	first := setup.routerSample()
	cpu0 := setup.cpuSample()
	origin := time.Now()
	for i, rate := range sc.Steps.Rates {
		if ctx.Err() != nil {
			break
		}
		if i > 0 {
			time.Sleep(pause)
		}
		st, recs := capacityStep(e, sc, setup, client, tr, rate, step, origin)
		all = append(all, recs...)
		if !st.Sustained {
			// One repeat before giving up: on a shared machine a single
			// burst of foreign load can sink one step; both tries are
			// reported.
			run.Steps = append(run.Steps, st)
			time.Sleep(repeatPause)
			st, recs = capacityStep(e, sc, setup, client, tr, rate, step, origin)
			st.Retry = true
			all = append(all, recs...)
		}
		run.Steps = append(run.Steps, st)
		if !st.Sustained {
			break
		}
		run.MaxSustainedRPS = rate
	}
	total := time.Since(origin)
	run.OtherLoad = otherLoad(cpu0, setup.cpuSample(), total)
	if setup.router != nil {
		run.Router = routerStats(first, setup.routerSample(), len(all), total, e.workers)
	}
	run.DurationMs = msOf(total)
	run.Summary = metrics.Summarize(all, total)
	run.Timeline = metrics.Timeline(all, total)
	return all
}

// repeatPause lets an overloaded router and the generator drain their
// queues before a failed step is repeated.
const repeatPause = 3 * time.Second

// capacityStep runs one step of the staircase.
func capacityStep(e *env, sc *scenario.Scenario, setup *runSetup, client *http.Client, tr vegeta.Targeter,
	rate int, step time.Duration, origin time.Time) (report.Step, []metrics.Record) {
	before := setup.routerSample()
	cpu0 := setup.cpuSample()
	start := time.Now()
	recs := attack(client, tr, rate, step, origin)
	st := report.Step{Rate: rate, Summary: metrics.Summarize(recs, step)}
	st.OtherLoad = otherLoad(cpu0, setup.cpuSample(), time.Since(start))
	if setup.router != nil {
		st.Router = routerStats(before, setup.routerSample(), len(recs), step, e.workers)
	}
	st.Sustained, st.Why = sustained(st.Summary, rate, sc.SLO)
	return st, recs
}

// sustained: the step met the SLO and the offered rate was really served
// (a generator or router that falls behind sends or answers less).
func sustained(s metrics.Summary, rate int, slo scenario.SLO) (bool, string) {
	switch {
	case s.SuccessRate < slo.MinSuccess:
		return false, "success below the SLO"
	case s.Latency.P99 > slo.MaxP99Ms:
		return false, "p99 above the SLO"
	case s.Throughput < 0.95*float64(rate):
		return false, "under 95 % of the offered rate answered"
	}
	return true, ""
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
		if a.Version != "" && !a.Invalid && !a.Skipped && a.Error == "" {
			if _, dup := rank[a.Version]; !dup {
				rank[a.Version] = len(rank)
			}
		}
	}
	for i := range actions {
		a := &actions[i]
		if a.Skipped || a.Error != "" {
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
