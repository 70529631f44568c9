package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// compare runs every scenario against every target in interleaved rounds
// (A B C A B C …, so that drift in the machine's load hits every target
// alike), then the parity suite, writing results.json after each run so an
// interrupted compare keeps what it measured, and renders the report.
func compare(ctx context.Context, e *env, scs []*scenario.Scenario, targets []string, out string, parity bool) error {
	defer removeQuota()
	res := &report.Results{
		StartedAt: time.Now().UTC(),
		Machine:   machineInfo(e.root, e.cores),
		Budget: report.Budget{RouterCPUs: e.routerCPUs, GeneratorCPUs: e.generatorCPUs, RouterWorkers: e.workers,
			RouterCPUQuota: e.quota.coresOrZero(), RouterCores: e.routerCores, TargetCPUQuota: e.quotaOverride},
		DurationScale: e.scale,
		Rounds:        e.rounds,
		Quick:         e.quick,
		ParitySkipped: !parity,
	}
	e.log("report directory %s; proxy CPUs %s (quota %s, --workers %d), generator and cells CPUs %s; %d rounds",
		out, e.routerCPUs, quotaText(e), e.workers, e.generatorCPUs, e.rounds)
	prog := newProgress(e, scs, targets)
	for _, sc := range scs {
		sr := newScenarioResult(sc, e.scale)
		for round := 1; round <= sc.Rounds(e.rounds); round++ {
			for _, t := range targets {
				if why := e.notApplicable(sc, t); why != "" {
					if round == 1 {
						sr.Runs = append(sr.Runs, report.Run{Target: t, Round: 1, NotApplicable: why})
					}
					continue
				}
				e.log("%s %s against %s, round %d/%d (%s)", prog.next(), sc.Name, t, round, sc.Rounds(e.rounds), sc.Duration(e.scale))
				run := runScenario(ctx, e, sc, t, filepath.Join(out, "runs", sc.Name, fmt.Sprintf("%s-%d", t, round)))
				run.Round = round
				e.log("%s against %s, round %d: %s", sc.Name, t, round, oneLine(run))
				sr.Runs = append(sr.Runs, run)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		report.Aggregate(&sr, res.Budget)
		res.Scenarios = append(res.Scenarios, sr)
		if err := report.WriteJSON(out, res); err != nil {
			return err
		}
	}
	if parity {
		res.Parity = runParitySuites(e, targets)
	}
	res.FinishedAt = time.Now().UTC()
	if err := report.WriteJSON(out, res); err != nil {
		return err
	}
	if err := report.Render(out, res); err != nil {
		return err
	}
	if err := checkInBrowser(ctx, e.log, out); err != nil {
		return err
	}
	e.log("report: %s and %s (%s in all)", filepath.Join(out, "report.md"), report.HTMLName, time.Since(res.StartedAt).Round(time.Second))
	if e.quick {
		if err := checkQuick(out, res); err != nil {
			return err
		}
		e.log("quick compare: every scenario, target and section produced")
	}
	return nil
}

func quotaText(e *env) string {
	if e.quota == nil {
		return "none"
	}
	return fmt.Sprintf("%.2f cores", e.quota.cores)
}

func oneLine(r report.Run) string {
	if r.Error != "" {
		return "ERROR " + r.Error
	}
	s := r.Summary
	line := fmt.Sprintf("%d requests, %.3f%% success, p50 %.3f ms, p99 %.3f ms, max %.1f ms, %.2f %% late sends",
		s.Requests, 100*s.SuccessRate, s.Latency.P50, s.Latency.P99, s.Latency.Max, 100*s.LateFraction)
	if r.Router != nil {
		line += fmt.Sprintf(", proxy %.1f µs/request", r.Router.CPUPerRequestUs())
	}
	if len(r.Steps) > 0 {
		line += fmt.Sprintf("; probe %.0f req/s, max sustained %d req/s, bound: %s (%s)", r.ProbeRPS, r.MaxSustainedRPS, r.Bound, r.BoundWhy)
	}
	if r.Invalid != "" {
		line += "; INVALID: " + r.Invalid
	}
	return line
}

// newScenarioResult is a scenario's section of results.json, without runs.
func newScenarioResult(sc *scenario.Scenario, scale float64) report.ScenarioResult {
	sr := report.ScenarioResult{Name: sc.Name, Question: sc.Question, Config: sc.Config, SLO: sc.SLO,
		Scale: sc.Scale(scale), Capacity: sc.Steps != nil, HasTimeline: len(sc.Timeline) > 0, SlowHeads: sc.SlowHeads}
	if sr.Config == "" {
		sr.Config = "inline"
	}
	sr.AccessLog, sr.ControlPlane, sr.Load = sc.AccessLog, sc.ControlPlane, describeLoad(sc, scale)
	return sr
}

func describeLoad(sc *scenario.Scenario, scale float64) string {
	switch {
	case sc.Steps != nil:
		st := sc.Steps
		step := time.Duration(float64(st.StepMs)*sc.Scale(scale)) * time.Millisecond
		probe := time.Duration(float64(st.ProbeMs)*sc.Scale(scale)) * time.Millisecond
		return fmt.Sprintf("loadgen: a %s closed-loop probe on %d connections finds the throughput X; then open-loop steps of %v req/s and %v × X, %s each, on %d connections, until a step is not sustained",
			probe, st.ProbeConns, st.Rates, st.Fractions, step, st.Conns)
	case sc.ClosedLoop():
		return fmt.Sprintf("loadgen: closed loop on %d connection(s) for %s", sc.Connections(), sc.Duration(scale))
	case sc.UsesVegeta():
		return fmt.Sprintf("vegeta: %d req/s for %s, open loop, at most %d concurrent requests", sc.Rate, sc.Duration(scale), maxWorkers)
	}
	return fmt.Sprintf("loadgen: %d req/s for %s, open loop on %d connections", sc.Rate, sc.Duration(scale), sc.Connections())
}
