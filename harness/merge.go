package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func mergeCmd() *cobra.Command {
	var out string
	var routerCores float64
	cmd := &cobra.Command{
		Use:   "merge --out DIR FILE...",
		Short: "Merge the raw result files of every share of a distributed attack into one run's results.json and report",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			if out == "" {
				return errors.New("--out DIR is required")
			}
			if routerCores < 0 {
				return errors.New("--router-cores: want >= 0")
			}
			res, err := mergeAttacks(files, routerCores)
			if err != nil {
				return err
			}
			dir, err := reportDir(".", out)
			if err != nil {
				return err
			}
			if err := report.WriteJSON(dir, res); err != nil {
				return err
			}
			if err := report.Render(dir, res); err != nil {
				return err
			}
			run := res.Scenarios[0].Runs[0]
			logf("merged %d shares: %s", run.Attackers.Shares, oneLine(run))
			if w := run.Attackers.Warning; w != "" {
				logf("warning: %s", w)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "report directory (required)")
	cmd.Flags().Float64Var(&routerCores, "router-cores", 0, "the router's CPU budget in cores, the divisor of its utilisation (0: unknown)")
	return cmd
}

// share is one attack file.
type share struct {
	path string
	h    attackHeader
	recs []metrics.Record
}

// mergeAttacks reads every share of one distributed run, checks that they
// are exactly the shares of one schedule, and analyses their records
// together as one run.
func mergeAttacks(files []string, routerCores float64) (*report.Results, error) {
	var shares []share
	for _, f := range files {
		h, recs, err := readAttackFile(f)
		if err != nil {
			return nil, err
		}
		shares = append(shares, share{path: f, h: h, recs: recs})
	}
	if err := checkShares(shares); err != nil {
		return nil, err
	}
	slices.SortFunc(shares, func(a, b share) int { return cmp.Compare(a.h.Share.Index, b.h.Share.Index) })
	first := shares[0].h
	var sc scenario.Scenario
	if err := json.Unmarshal(first.Scenario, &sc); err != nil {
		return nil, fmt.Errorf("%s: scenario: %w", shares[0].path, err)
	}
	d := time.Duration(first.DurationMs * float64(time.Millisecond))
	var recs []metrics.Record
	var generatorCPU float64
	for _, s := range shares {
		recs = append(recs, s.recs...)
		generatorCPU += s.h.GeneratorCPUSeconds
	}
	// Each share is in schedule order; together they interleave.
	slices.SortStableFunc(recs, func(a, b metrics.Record) int { return cmp.Compare(a.Start, b.Start) })

	run := report.Run{Target: first.TargetName, Round: 1, Expected: first.Expected, BootstrapVersion: first.BootstrapVersion}
	run.ExpectedShare = expectedShares(run.Expected, sc.Targets)
	summarizeSteady(&run, recs, d)
	run.Invalid = invalidity(&sc, &run)
	run.Misrouted = misrouted(run.Expected, sc.Targets, recs)
	run.Generator = procStatsOf(procStats{}, procStats{CPU: time.Duration(generatorCPU * float64(time.Second))}, len(recs), d, 0)
	if rw := first.Router; rw != nil {
		sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
		run.Router = procStatsOf(procStats{CPU: sec(rw.CPUSecondsBefore)}, procStats{CPU: sec(rw.CPUSecondsAfter), MaxRSSB: rw.RSSBytesAfter},
			len(recs), time.Duration(rw.WallMs*float64(time.Millisecond)), routerCores)
	}
	run.Attackers = attackersOf(shares)

	sr := newScenarioResult(&sc, first.DurationScale)
	sr.Load = fmt.Sprintf("%s, from %d attackers at %d req/s each", sr.Load, len(shares), first.Rate/len(shares))
	sr.Runs = []report.Run{run}
	res := &report.Results{StartedAt: first.Start, FinishedAt: first.Start.Add(d), DurationScale: first.DurationScale, Rounds: 1,
		ParitySkipped: true, Budget: report.Budget{RouterCPUs: remoteCPUs,
			GeneratorCPUs: fmt.Sprintf("of %d attackers (the run's attackers table)", len(shares)), RouterCores: routerCores}}
	report.Aggregate(&sr, res.Budget)
	res.Scenarios = []report.ScenarioResult{sr}
	return res, nil
}

// checkShares: one file per share of the same schedule (scenario, rate,
// duration, target, start), each with exactly its share's requests.
func checkShares(shares []share) error {
	first := shares[0]
	of := first.h.Share.Of
	if len(shares) != of {
		return fmt.Errorf("%d files for a run of %d shares (%s says so)", len(shares), of, first.path)
	}
	seen := map[int]string{}
	interval := time.Second / time.Duration(max(first.h.Rate, 1))
	total := int(time.Duration(first.h.DurationMs*float64(time.Millisecond)) / interval)
	for _, s := range shares {
		h := s.h
		same := bytes.Equal(h.Scenario, first.h.Scenario) && h.Rate == first.h.Rate && h.DurationMs == first.h.DurationMs &&
			h.Share.Of == of && h.TargetName == first.h.TargetName && h.TargetURL == first.h.TargetURL &&
			h.Start.Equal(first.h.Start) && h.StartSource == first.h.StartSource
		if !same {
			return fmt.Errorf("%s and %s are not shares of one run (scenario, rate, duration, shares, target or start differ)", first.path, s.path)
		}
		if p, dup := seen[h.Share.Index]; dup {
			return fmt.Errorf("%s and %s are both share %d/%d", p, s.path, h.Share.Index, of)
		}
		seen[h.Share.Index] = s.path
		if want := (total - h.Share.Index + of - 1) / of; len(s.recs) != want {
			return fmt.Errorf("%s: share %d/%d has %d results, its schedule %d", s.path, h.Share.Index, of, len(s.recs), want)
		}
	}
	return nil
}

// attackersOf describes the shares and their clocks: the skew is the
// spread of the offsets, the alignment the largest uncertainty.
func attackersOf(shares []share) *report.Attackers {
	first := shares[0].h
	a := &report.Attackers{Shares: len(shares), Start: first.Start, StartSource: first.StartSource, ClockSkewMs: -1}
	lo, hi := math.Inf(1), math.Inf(-1)
	measured := true
	for _, s := range shares {
		sum := metrics.Summarize(s.recs, 0)
		a.Each = append(a.Each, report.Share{Index: s.h.Share.Index, Host: s.h.Host, Requests: len(s.recs), LateFraction: sum.LateFraction,
			ClockOffsetMs: s.h.ClockOffsetMs, ClockUncertaintyMs: s.h.ClockUncertaintyMs, GeneratorCPUSeconds: s.h.GeneratorCPUSeconds})
		if s.h.ClockOffsetMs == nil {
			measured = false
			continue
		}
		lo, hi = min(lo, *s.h.ClockOffsetMs), max(hi, *s.h.ClockOffsetMs)
		a.AlignmentMs = max(a.AlignmentMs, s.h.ClockUncertaintyMs)
	}
	switch {
	case !measured:
		a.Warning = "the attackers started at a time given on their command lines, each on its own clock: the skew between their clocks is not measured and shifts their shares against each other (use harness barrier)"
	default:
		a.ClockSkewMs = hi - lo
		if a.AlignmentMs > msOf(metrics.LateAfter) {
			a.Warning = fmt.Sprintf("an attacker's clock offset is known only to ±%.3f ms (over %v): the shares may be shifted against each other by that much on the timeline (each latency is from its own attacker's schedule and stays exact)",
				a.AlignmentMs, metrics.LateAfter)
		}
	}
	return a
}
