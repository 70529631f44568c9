package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// warmup is the unmeasured load before every measured run: it opens the
// keep-alive connections (kept for the measurement) and lets every proxy
// reach a steady state.
const warmup = time.Second

// runScenario runs one scenario against one target and measures it.
func runScenario(ctx context.Context, e *env, sc *scenario.Scenario, target, dir string) (run report.Run) {
	run.Target = target
	if err := os.MkdirAll(dir, 0o755); err != nil {
		run.Error = err.Error()
		return run
	}
	setup, err := start(ctx, e, sc, target, dir)
	if setup != nil {
		defer setup.stop()
	}
	if err != nil {
		run.Error = err.Error()
		return run
	}
	run.Expected = expectedPlacements(setup.cfg, sc.Targets)
	run.ExpectedShare = expectedShares(run.Expected, sc.Targets)
	run.BootstrapVersion = setup.cfg.Version
	addr := func(int) string { return setup.routerAddr }
	if target == report.TargetDirect {
		addr = func(i int) string { return setup.ready.Cells[run.Expected[sc.Targets[i].RoutingKey]] }
	}
	l := newLoad(sc.Targets, addr)
	defer l.close()

	warmUp(sc, l)
	if ctx.Err() != nil {
		run.Error = ctx.Err().Error()
		return run
	}

	var recs []metrics.Record
	if sc.Steps != nil {
		recs = measureCapacity(ctx, e, sc, setup, l, &run)
	} else {
		recs = measureSteady(ctx, e, sc, setup, target, l, &run)
	}
	if setup.router != nil && setup.router.Exited() {
		run.Error = fmt.Sprintf("%s exited during the run (%v): %s", setup.router.Name(), setup.router.Err(), setup.router.StderrTail())
	}
	run.Invalid = invalidity(sc, &run)
	run.Misrouted = misrouted(run.Expected, sc.Targets, recs)
	return run
}

// invalidity says why a run must not count ("" when it does): its
// generator fell behind its schedule. A capacity staircase is judged by its
// first step (the figures at the fixed low rate come from it); its later
// steps each carry their own verdict, and a late generator there ends the
// staircase as generator-bound instead.
func invalidity(sc *scenario.Scenario, run *report.Run) string {
	sum := run.Summary
	if sc.Steps != nil {
		if len(run.Steps) == 0 {
			return ""
		}
		sum = run.Steps[0].Summary
	}
	if sum.GeneratorKeptUp() {
		return ""
	}
	return fmt.Sprintf("the generator sent %.2f %% of its requests over %v late (limit %.0f %%)",
		100*sum.LateFraction, metrics.LateAfter, 100*metrics.MaxLateFraction)
}
