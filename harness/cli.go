package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// options are the flags shared by compare and run.
type options struct {
	scenarios     string
	out           string
	durationScale float64
	routerCPUs    string
	skipBuild     bool
	goRouter      string
	pingora       string
	mockbackends  string
	controlplane  string
	nginx         string
	quota         float64
	rounds        int
	quick         bool
	targets       string
	jsonOut       bool
	targetQuota   string
}

func (o *options) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "report directory (default reports/<UTC timestamp>/)")
	f.StringVar(&o.scenarios, "scenarios", "scenarios", "directory of scenario files")
	f.Float64Var(&o.durationScale, "duration-scale", 1, "multiply scenario durations (not of fixed-timing scenarios), e.g. 0.2 for a quick run")
	f.StringVar(&o.routerCPUs, "router-cpus", "1", "CPU list (taskset) for the router under test; the generator and mock cells get the other cores")
	f.BoolVar(&o.skipBuild, "skip-build", false, "use the binaries as they are")
	f.StringVar(&o.goRouter, "go-router", "bin/go-router", "Go router binary")
	f.StringVar(&o.pingora, "pingora-router", "target/release/pingora-router", "Pingora router binary")
	f.StringVar(&o.mockbackends, "mockbackends", "bin/mockbackends", "mock backends binary")
	f.StringVar(&o.controlplane, "controlplane", "bin/controlplane", "control plane binary")
	f.StringVar(&o.nginx, "nginx", "", "nginx binary for the anchor (default /usr/sbin/nginx when installed)")
	f.Float64Var(&o.quota, "router-cpu-quota", defaultQuota, "CPU quota of every proxy under test, in cores (a cgroup CFS quota on --router-cpus; 0: none)")
	f.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of every scenario x target (A B C A B C ...)")
	f.BoolVar(&o.quick, "quick", false, "one round at 0.15 of every duration, fixed-timing scenarios too, no parity: checks that every section is produced; its figures are not verdicts")
	f.StringVar(&o.targets, "targets", strings.Join(report.AllTargets, ","), "targets to run, comma-separated")
	f.StringVar(&o.targetQuota, "target-cpu-quota", "", "TARGET=CORES,...: a proxy's own CPU quota instead of --router-cpu-quota, to slow it deliberately (tests harness diff; never for verdicts)")
	f.BoolVar(&o.jsonOut, "json", false, "print the verdicts and headline figures as JSON on stdout when done (report.Digest)")
}

// defaultQuota is the proxies' CPU budget: 0.4 of a core, so that the
// generator and the cells on the other core sustain well over 1.5x the
// fastest proxy, nginx included (at 0.5 nginx reached the generator side's
// ceiling; docs/measurement.md).
const defaultQuota = 0.4

// quickScale is --quick's duration scale.
const quickScale = 0.15

// prepare checks the flags, pins the harness to the generator CPUs,
// builds, and returns the run environment and the output directory.
func (o *options) prepare() (*env, string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, "", err
	}
	online, err := onlineCPUs()
	if err != nil {
		return nil, "", err
	}
	routerSet, err := parseCPUList(o.routerCPUs)
	if err != nil {
		return nil, "", fmt.Errorf("--router-cpus: %w", err)
	}
	genSet := online.minus(routerSet)
	if len(genSet) == 0 {
		return nil, "", errors.New("--router-cpus leaves no core for the load generator and the mock cells")
	}
	if len(routerSet.minus(online)) > 0 {
		return nil, "", fmt.Errorf("--router-cpus %s: not all of them are online (%s)", o.routerCPUs, online)
	}
	if o.durationScale <= 0 || o.durationScale > 10 {
		return nil, "", errors.New("--duration-scale: want a factor in (0, 10]")
	}
	if o.quick {
		o.durationScale, o.rounds = quickScale, 1
	}
	if o.rounds < 1 || o.rounds > 50 {
		return nil, "", errors.New("--rounds: want 1..50")
	}
	if o.quota < 0 || o.quota > float64(len(routerSet)) {
		return nil, "", fmt.Errorf("--router-cpu-quota %v: want 0 (none) up to the %d CPUs of --router-cpus", o.quota, len(routerSet))
	}
	overrides, err := parseQuotaOverrides(o.targetQuota, float64(len(routerSet)))
	if err != nil {
		return nil, "", err
	}
	if len(overrides) > 0 && o.quota <= 0 {
		return nil, "", errors.New("--target-cpu-quota needs the quota cgroup of --router-cpu-quota > 0")
	}
	if err := pinSelf(genSet.String()); err != nil {
		return nil, "", err
	}
	quota, err := newCPUQuota(o.quota)
	if err != nil {
		return nil, "", err
	}
	routerCores := float64(len(routerSet))
	if quota != nil {
		routerCores = o.quota
	}
	e := &env{
		root:          root,
		goRouter:      abs(root, o.goRouter),
		pingora:       abs(root, o.pingora),
		mockbackends:  abs(root, o.mockbackends),
		controlplane:  abs(root, o.controlplane),
		goFloor:       abs(root, "bin/floorproxy"),
		pingoraFloor:  abs(root, "target/release/examples/floor"),
		routerCPUs:    routerSet.String(),
		generatorCPUs: genSet.String(),
		allCPUs:       online.String(),
		cores:         len(online),
		workers:       len(routerSet),
		scale:         o.durationScale,
		log:           logf,
		nginx:         nginxBinary(o.nginx),
		quota:         quota,
		quotaOverride: overrides,
		routerCores:   routerCores,
		rounds:        o.rounds,
		quick:         o.quick,

		generatorCores: len(genSet),
	}
	removeQuota = quota.remove
	if !o.skipBuild {
		if err := build(e, e.allCPUs); err != nil {
			return nil, "", err
		}
	}
	targets, err := parseTargets(o.targets)
	if err != nil {
		return nil, "", err
	}
	for _, b := range e.binaries(targets) {
		if _, err := os.Stat(b); err != nil {
			return nil, "", fmt.Errorf("binary missing (build it, or drop --skip-build): %w", err)
		}
	}
	out, err := reportDir(root, o.out)
	return e, out, err
}

// reportDir makes the report directory: --out, or reports/<UTC>/.
// Absolute, because children (nginx's -p prefix above all) resolve their
// paths from it.
func reportDir(root, flag string) (string, error) {
	out := abs(root, flag)
	if flag == "" {
		out = filepath.Join(root, "reports", time.Now().UTC().Format("20060102T150405Z"))
	}
	return out, os.MkdirAll(out, 0o755)
}

func abs(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// repoRoot is the working directory, which must be the cellbench module root.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(wd, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module cellbench\n") {
		return "", errors.New("run the harness from the cellbench repository root")
	}
	return wd, nil
}

func compareCmd() *cobra.Command {
	var o options
	var only string
	var skipParity bool
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Build everything, run the scenarios against both routers and a direct baseline, run the parity suite, write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(remote.targets) > 0 {
				return compareRemote(cmd.Context(), &o, &remote, only)
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			scs, err := loadScenarios(e, o.scenarios, only)
			if err != nil {
				return err
			}
			targets, err := parseTargets(o.targets)
			if err != nil {
				return err
			}
			if err := compare(cmd.Context(), e, scs, targets, out, !skipParity && !o.quick); err != nil {
				return err
			}
			return o.printDigest(out)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&only, "only", "", "comma-separated scenario names to run (default all)")
	cmd.Flags().BoolVar(&skipParity, "skip-parity", false, "do not run the parity suite")
	remote.register(cmd)
	return cmd
}

func runCmd() *cobra.Command {
	var o options
	var file, target string
	cmd := &cobra.Command{
		Use:   "run --scenario FILE --target NAME",
		Short: "Run one scenario against one target and write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parseTargets(target); err != nil {
				return err
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			sc, err := scenario.Load(file, e.root)
			if err != nil {
				return err
			}
			if err := compare(cmd.Context(), e, []*scenario.Scenario{sc}, []string{target}, out, false); err != nil {
				return err
			}
			return o.printDigest(out)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&file, "scenario", "", "scenario file (required)")
	cmd.Flags().StringVar(&target, "target", "", strings.Join(report.AllTargets, ", ")+" (required)")
	cmd.MarkFlagRequired("scenario")
	cmd.MarkFlagRequired("target")
	return cmd
}

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Recompute the headline and verdicts of DIR/results.json and re-render DIR/report.md, its charts, report.html and report.png",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := report.ReadJSON(args[0])
			if err != nil {
				return err
			}
			// Headline and verdicts follow today's rules, whatever the
			// harness that measured the runs computed.
			for i := range res.Scenarios {
				report.Aggregate(&res.Scenarios[i], res.Budget)
			}
			if err := report.WriteJSON(args[0], res); err != nil {
				return err
			}
			if err := report.Render(args[0], res); err != nil {
				return err
			}
			return checkInBrowser(cmd.Context(), logf, args[0])
		},
	}
}

func loadScenarios(e *env, dir, only string) ([]*scenario.Scenario, error) {
	all, err := scenario.LoadDir(abs(e.root, dir), e.root)
	if err != nil {
		return nil, err
	}
	if e.quick {
		// --quick checks the pipeline, not the routers' clocks.
		for _, s := range all {
			s.FixedTiming = false
		}
	}
	if only == "" {
		var defaults []*scenario.Scenario
		for _, s := range all {
			if !s.OptIn {
				defaults = append(defaults, s)
			}
		}
		return defaults, nil
	}
	byName := map[string]*scenario.Scenario{}
	for _, s := range all {
		byName[s.Name] = s
	}
	var out []*scenario.Scenario
	for _, name := range strings.Split(only, ",") {
		s, ok := byName[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("--only: no scenario named %q in %s", name, dir)
		}
		out = append(out, s)
	}
	return out, nil
}

// removeQuota deletes the proxies' cgroup when the harness ends.
var removeQuota = func() {}

func parseTargets(list string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(report.AllTargets, t) {
			return nil, fmt.Errorf("target %q: want one of %s", t, strings.Join(report.AllTargets, ", "))
		}
		out = append(out, t)
	}
	return out, nil
}

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

// engineOf is the --engine value of a Go router's arguments ("" for
// Pingora).
func engineOf(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--engine" {
			return args[i+1]
		}
	}
	return ""
}

func quotaText(e *env) string {
	if e.quota == nil {
		return "none"
	}
	return fmt.Sprintf("%.2f cores", e.quota.cores)
}

// progress counts runs and estimates the time left from the scenarios'
// planned durations.
type progress struct {
	start       time.Time
	done, total int
	planned     time.Duration
}

// runOverhead is a run's time beyond its load: starting the processes,
// the warm-up, stopping them.
const runOverhead = warmup + 2*time.Second

func newProgress(e *env, scs []*scenario.Scenario, targets []string) *progress {
	p := &progress{start: time.Now()}
	for _, sc := range scs {
		for _, t := range targets {
			if e.notApplicable(sc, t) == "" {
				p.total += sc.Rounds(e.rounds)
				p.planned += time.Duration(sc.Rounds(e.rounds)) * (sc.Duration(e.scale) + runOverhead)
			}
		}
	}
	return p
}

// next is the "[n/N elapsed, ETA]" prefix of the next run's log line; the
// estimate scales the plan by how the runs so far compared with theirs.
func (p *progress) next() string {
	p.done++
	elapsed := time.Since(p.start)
	eta := p.planned - elapsed
	if p.done > 1 {
		share := float64(p.done-1) / float64(p.total)
		eta = time.Duration(float64(elapsed)/share) - elapsed
	}
	return fmt.Sprintf("[%d/%d, %s elapsed, about %s left]", p.done, p.total, elapsed.Round(time.Second), max(eta, 0).Round(time.Second))
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
