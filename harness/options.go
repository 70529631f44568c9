package main

import (
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
