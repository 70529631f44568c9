package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

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
	if err := pinSelf(genSet.String()); err != nil {
		return nil, "", err
	}
	e := &env{
		root:          root,
		goRouter:      abs(root, o.goRouter),
		pingora:       abs(root, o.pingora),
		mockbackends:  abs(root, o.mockbackends),
		controlplane:  abs(root, o.controlplane),
		routerCPUs:    routerSet.String(),
		generatorCPUs: genSet.String(),
		allCPUs:       online.String(),
		cores:         len(online),
		workers:       len(routerSet),
		scale:         o.durationScale,
		log:           logf,
	}
	if !o.skipBuild {
		if err := build(e, e.allCPUs); err != nil {
			return nil, "", err
		}
	}
	for _, b := range []string{e.goRouter, e.pingora, e.mockbackends, e.controlplane} {
		if _, err := os.Stat(b); err != nil {
			return nil, "", fmt.Errorf("binary missing (build it, or drop --skip-build): %w", err)
		}
	}
	out := o.out
	if out == "" {
		out = filepath.Join(root, "reports", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, "", err
	}
	return e, out, nil
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
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Build everything, run the scenarios against both routers and a direct baseline, run the parity suite, write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			scs, err := loadScenarios(e, o.scenarios, only)
			if err != nil {
				return err
			}
			return compare(cmd.Context(), e, scs, report.AllTargets, out, !skipParity)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&only, "only", "", "comma-separated scenario names to run (default all)")
	cmd.Flags().BoolVar(&skipParity, "skip-parity", false, "do not run the parity suite")
	return cmd
}

func runCmd() *cobra.Command {
	var o options
	var file, target string
	cmd := &cobra.Command{
		Use:   "run --scenario FILE --target go|pingora|direct",
		Short: "Run one scenario against one target and write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch target {
			case report.TargetGo, report.TargetPingora, report.TargetDirect:
			default:
				return fmt.Errorf("--target %q: want go, pingora or direct", target)
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			sc, err := scenario.Load(file, e.root)
			if err != nil {
				return err
			}
			return compare(cmd.Context(), e, []*scenario.Scenario{sc}, []string{target}, out, false)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&file, "scenario", "", "scenario file (required)")
	cmd.Flags().StringVar(&target, "target", "", "go, pingora or direct (required)")
	cmd.MarkFlagRequired("scenario")
	cmd.MarkFlagRequired("target")
	return cmd
}

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Re-render DIR/report.md and DIR's charts from DIR/results.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			res, err := report.ReadJSON(args[0])
			if err != nil {
				return err
			}
			return report.Render(args[0], res)
		},
	}
}

func loadScenarios(e *env, dir, only string) ([]*scenario.Scenario, error) {
	all, err := scenario.LoadDir(abs(e.root, dir), e.root)
	if err != nil {
		return nil, err
	}
	if only == "" {
		return all, nil
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

// compare runs every scenario against every target, then the parity suite,
// writing results.json after each run so an interrupted compare keeps what
// it measured, and renders the report at the end.
func compare(ctx context.Context, e *env, scs []*scenario.Scenario, targets []string, out string, parity bool) error {
	res := &report.Results{
		StartedAt:     time.Now().UTC(),
		Machine:       machineInfo(e.root, e.cores),
		Budget:        report.Budget{RouterCPUs: e.routerCPUs, GeneratorCPUs: e.generatorCPUs, RouterWorkers: e.workers},
		DurationScale: e.scale,
		ParitySkipped: !parity,
	}
	e.log("report directory %s; router CPUs %s (--workers %d), generator and cells CPUs %s",
		out, e.routerCPUs, e.workers, e.generatorCPUs)
	for _, sc := range scs {
		sr := report.ScenarioResult{Name: sc.Name, Question: sc.Question, Config: sc.Config, SLO: sc.SLO,
			Scale: sc.Scale(e.scale), Capacity: sc.Steps != nil, HasTimeline: len(sc.Timeline) > 0}
		if sr.Config == "" {
			sr.Config = "inline"
		}
		sr.AccessLog, sr.ControlPlane, sr.Load = sc.AccessLog, sc.ControlPlane, describeLoad(sc, e.scale)
		for _, t := range targets {
			e.log("%s against %s (%s)", sc.Name, t, sc.Duration(e.scale))
			run := runScenario(ctx, e, sc, t, filepath.Join(out, "runs", sc.Name, t))
			e.log("%s against %s: %s", sc.Name, t, oneLine(run))
			sr.Runs = append(sr.Runs, run)
		}
		res.Scenarios = append(res.Scenarios, sr)
		if err := report.WriteJSON(out, res); err != nil {
			return err
		}
	}
	if parity {
		for _, r := range []struct{ name, bin string }{{report.TargetGo, e.goRouter}, {report.TargetPingora, e.pingora}} {
			e.log("parity suite against %s", r.name)
			p := runParity(e, r.name, r.bin, e.allCPUs)
			e.log("parity %s: %d pass, %d fail, %d skip %s", r.name, p.Pass, p.Fail, p.Skip, p.Error)
			res.Parity = append(res.Parity, p)
		}
	}
	res.FinishedAt = time.Now().UTC()
	if err := report.WriteJSON(out, res); err != nil {
		return err
	}
	if err := report.Render(out, res); err != nil {
		return err
	}
	e.log("report: %s", filepath.Join(out, "report.md"))
	return nil
}

func oneLine(r report.Run) string {
	if r.Error != "" {
		return "ERROR " + r.Error
	}
	s := r.Summary
	line := fmt.Sprintf("%d requests, %.3f%% success, p50 %.2f ms, p99 %.2f ms, max %.1f ms",
		s.Requests, 100*s.SuccessRate, s.Latency.P50, s.Latency.P99, s.Latency.Max)
	if len(r.Steps) > 0 {
		line += fmt.Sprintf(", max sustained %d req/s", r.MaxSustainedRPS)
	}
	return line
}

func describeLoad(sc *scenario.Scenario, scale float64) string {
	if sc.Steps == nil {
		return fmt.Sprintf("%d req/s for %s, open loop, at most %d concurrent requests", sc.Rate, sc.Duration(scale), maxWorkers)
	}
	step := time.Duration(float64(sc.Steps.StepMs)*sc.Scale(scale)) * time.Millisecond
	return fmt.Sprintf("open-loop steps of %v req/s, %s each, at most %d concurrent requests", sc.Steps.Rates, step, maxWorkers)
}
