package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"cellbench/config"
	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
	"cellbench/internal/proc"
	"cellbench/mockbackends/ready"
)

// env is what every run needs: binaries, the repository root and the CPU
// budget.
type env struct {
	root         string
	goRouter     string
	pingora      string
	mockbackends string
	controlplane string
	// goFloor and pingoraFloor are the framework floors' binaries.
	goFloor       string
	pingoraFloor  string
	routerCPUs    string
	generatorCPUs string
	allCPUs       string
	cores         int
	workers       int
	scale         float64
	log           func(format string, args ...any)
	// nginx is the anchor's binary ("" when nginx is not installed: its
	// rows then say so).
	nginx string
	// quota caps every proxy under test (nil: no quota); routerCores is
	// the budget in cores, the divisor of utilisation.
	quota *cpuQuota
	// quotaOverride is a target's own quota in cores (--target-cpu-quota).
	quotaOverride map[string]float64
	routerCores   float64
	// generatorCores is the number of generator CPUs.
	generatorCores int
	rounds         int
	quick          bool
	// remote are the routers the harness did not start (compare --target),
	// by target name; cellsAdmin and controlPlaneAddr are the host:port of
	// the cells' chaos API and the control plane they use.
	remote           map[string]*remoteTarget
	cellsAdmin       string
	controlPlaneAddr string
}

// routerCommand is the binary and the engine arguments of a router target.
func (e *env) routerCommand(target string) (string, []string) {
	switch target {
	case report.TargetGo:
		return e.goRouter, []string{"--engine", "stdlib"}
	case report.TargetGoTuned:
		return e.goRouter, []string{"--engine", "tuned"}
	}
	return e.pingora, nil
}

// notApplicable says why a target cannot run a scenario ("" if it can).
func (e *env) notApplicable(sc *scenario.Scenario, target string) string {
	if e.remote[target] != nil {
		return e.remoteNotApplicable(sc)
	}
	if report.IsFloor(target) {
		return floorNotApplicable(sc, e.root)
	}
	if target == report.TargetDirect {
		return directNotApplicable(sc)
	}
	if target != report.TargetNginx {
		return ""
	}
	if e.nginx == "" {
		return "nginx is not installed (apt-get install nginx-light)"
	}
	switch {
	case sc.ControlPlane:
		return "nginx takes no control-plane pushes"
	case len(sc.Timeline) > 0:
		return "nginx has no config reload of this format, health-checked fallbacks or breakers"
	}
	return ""
}

// warmup is the unmeasured load before every measured run: it opens the
// keep-alive connections (kept for the measurement) and lets every proxy
// reach a steady state.
const warmup = time.Second

// runSetup is the live processes and files of one run.
type runSetup struct {
	env        *env
	dir        string
	cfg        *config.Config // with endpoints rewritten to the live cells
	cfgPath    string
	mocks      *proc.Process
	ready      ready.Line
	router     *proc.Process
	routerAddr string
	cp         *proc.Process
	cpAddr     string
	cpCfgPath  string
	// remote is the router when the harness did not start it.
	remote *remoteTarget
}

// proxied reports whether the load goes through a proxy (not direct).
func (s *runSetup) proxied() bool { return s.router != nil || s.remote != nil }

func (s *runSetup) stop() {
	s.router.Stop(6 * time.Second)
	s.cp.Stop(3 * time.Second)
	s.mocks.Stop(4 * time.Second)
}

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

// directNotApplicable: with no router there is no config source, so a
// scenario about changing the config (reload, control-plane push) has
// nothing to measure on the direct baseline.
func directNotApplicable(sc *scenario.Scenario) string {
	if sc.ControlPlane {
		return "no router: there is no control plane to push to"
	}
	for _, a := range sc.Timeline {
		if a.ConfigAction() {
			return "no router: there is no config to change"
		}
	}
	return ""
}

// floorNotApplicable: a floor proxy has one fixed peer and no features,
// so it stands in for a router only where every request goes to one
// placement and nothing changes during the run.
func floorNotApplicable(sc *scenario.Scenario, root string) string {
	if sc.ControlPlane || len(sc.Timeline) > 0 {
		return "a floor proxy has no config source, fallbacks or breakers"
	}
	if sc.SlowHeads != nil {
		return "a floor proxy has no client-side protection (it exits when descriptors run out)"
	}
	cfg, err := sc.RouterConfig(root)
	if err != nil {
		return err.Error()
	}
	if len(placementsOf(cfg, sc.Targets)) != 1 {
		return "a floor proxy has one peer; this scenario's keys go to several placements"
	}
	return ""
}

// placementsOf is the set of placements the targets' keys are routed to.
func placementsOf(cfg *config.Config, targets []scenario.Target) map[string]bool {
	out := map[string]bool{}
	for _, p := range expectedPlacements(cfg, targets) {
		out[p] = true
	}
	return out
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

// start brings up the mock cells, the control plane if the scenario uses
// one, and the router (none for the direct baseline), and waits until each
// is ready.
func start(ctx context.Context, e *env, sc *scenario.Scenario, target, dir string) (*runSetup, error) {
	if err := e.applyQuota(target); err != nil {
		return nil, err
	}
	cfg, err := sc.RouterConfig(e.root)
	if err != nil {
		return nil, err
	}
	s := &runSetup{env: e, dir: dir}
	if r := e.remote[target]; r != nil {
		return s, s.startRemote(ctx, sc, r)
	}
	names := make([]string, 0, len(cfg.Placements))
	for name := range cfg.Placements {
		names = append(names, name)
	}
	sort.Strings(names)
	s.mocks, s.ready, err = startMocks(e.mockbackends, e.generatorCPUs, dir, names)
	if err != nil {
		return s, err
	}
	for name, p := range cfg.Placements {
		p.Endpoint = "http://" + s.ready.Cells[name]
	}
	s.cfg = cfg
	s.cfgPath = filepath.Join(dir, "router.json")
	if err := writeConfig(s.cfgPath, cfg); err != nil {
		return s, err
	}
	if target == report.TargetDirect {
		return s, nil
	}
	if target == report.TargetNginx {
		return s, s.startNginx(ctx, e, sc)
	}
	if report.IsFloor(target) {
		return s, s.startFloor(ctx, e, sc, target)
	}
	if sc.ControlPlane {
		if s.cpAddr, err = freePort(); err != nil {
			return s, err
		}
		s.cpCfgPath = filepath.Join(dir, "controlplane.json")
		if err := writeConfig(s.cpCfgPath, cfg); err != nil {
			return s, err
		}
		if err := s.startControlPlane(ctx, e); err != nil {
			return s, err
		}
	}
	if s.routerAddr, err = freePort(); err != nil {
		return s, err
	}
	admin, err := freePort()
	if err != nil {
		return s, err
	}
	accessLog := "off"
	if sc.AccessLog == "file" {
		accessLog = filepath.Join(dir, "access.log")
	}
	cp := ""
	if sc.ControlPlane {
		cp = s.cpAddr
	}
	bin, args := e.routerArgv(target, s.cfgPath, s.routerAddr, admin, accessLog, cp)
	if err := s.startProxy(sc, "router", bin, args); err != nil {
		return s, err
	}
	return s, s.router.WaitHealthy(ctx, "http://"+admin+"/healthz", 20*time.Second)
}

// binaries are the executables runs against targets need.
func (e *env) binaries(targets []string) []string {
	out := []string{e.mockbackends, e.controlplane}
	for _, t := range targets {
		switch t {
		case report.TargetGo, report.TargetGoTuned:
			out = append(out, e.goRouter)
		case report.TargetPingora:
			out = append(out, e.pingora)
		case report.TargetGoFloor:
			out = append(out, e.goFloor)
		case report.TargetPingoraFloor:
			out = append(out, e.pingoraFloor)
		}
	}
	return out
}

// routerArgv is a router target's command line: its config file, listen
// and admin addresses, access log ("off" or a path), the control plane's
// address when it takes pushes ("" when not).
func (e *env) routerArgv(target, cfgPath, listen, admin, accessLog, controlPlane string) (string, []string) {
	bin, args := e.routerCommand(target)
	args = append(args, "--config", cfgPath, "--listen", listen, "--admin", admin,
		"--access-log", accessLog, "--workers", strconv.Itoa(e.workers), "--node-id", "harness-"+target)
	if controlPlane != "" {
		args = append(args, "--control-plane", "ws://"+controlPlane+"/connect")
	}
	return bin, args
}

// startProxy starts the proxy under test on the proxies' CPU list, inside
// their quota, under prlimit when the scenario lowers its descriptor limit.
func (s *runSetup) startProxy(sc *scenario.Scenario, name, bin string, args []string) error {
	bin, args = proxyArgv(sc, bin, args)
	p, err := startChild(proc.Spec{Name: name, Path: bin, Args: args, CPUs: s.env.routerCPUs}, s.dir)
	if err != nil {
		return err
	}
	s.router = p
	if err := s.env.quota.add(p.PID()); err != nil {
		return fmt.Errorf("cpu quota: %w", err)
	}
	return nil
}

// startFloor starts a framework floor proxy with the one cell of the
// scenario's placement as its peer, under the routers' CPU list and quota.
func (s *runSetup) startFloor(ctx context.Context, e *env, sc *scenario.Scenario, target string) error {
	var err error
	if s.routerAddr, err = freePort(); err != nil {
		return err
	}
	var cell string
	for p := range placementsOf(s.cfg, sc.Targets) {
		cell = s.ready.Cells[p]
	}
	bin, args := e.goFloor, []string{"--listen", s.routerAddr, "--upstream", cell}
	if target == report.TargetPingoraFloor {
		bin, args = e.pingoraFloor, append(args, "--workers", strconv.Itoa(e.workers))
	}
	if err := s.startProxy(sc, target, bin, args); err != nil {
		return err
	}
	return s.router.WaitHealthy(ctx, "http://"+s.routerAddr+"/health", 10*time.Second)
}

// observed reads the process whose memory and descriptors a run samples:
// the proxy, or for the direct baseline the cells.
func (s *runSetup) observed() func() (report.ProcSample, bool) {
	if s.remote != nil {
		return s.remote.sample
	}
	p := s.mocks
	if s.router != nil {
		p = s.router
	}
	pid := p.PID()
	return func() (report.ProcSample, bool) { return readSample(pid) }
}

// startSlowHeads starts the scenario's slow-head attack, if it has one,
// against what the load goes to (the proxy, or for direct the first
// target's cell), for at most d; the returned func waits for it and
// records what it did in run. The attack is a child process of its own
// (`harness slowheads`) on the proxy's CPUs but outside its quota: in the
// generator's process its thousands of connections would take the
// well-behaved client's CPU and make every run invalid.
func (s *runSetup) startSlowHeads(ctx context.Context, sc *scenario.Scenario, d time.Duration, run *report.Run) func() {
	a := sc.SlowHeads
	if a == nil {
		return func() {}
	}
	addr := s.routerAddr
	if s.router == nil {
		addr = s.ready.Cells[run.Expected[sc.Targets[0].RoutingKey]]
	}
	self, err := os.Executable()
	if err != nil {
		run.Error = err.Error()
		return func() {}
	}
	var out bytes.Buffer // read once the process is done
	p, err := startChild(proc.Spec{Name: "slowheads", Path: self, Args: []string{"slowheads", "--addr", addr,
		"--conns", strconv.Itoa(a.Conns), "--byte-interval", (time.Duration(a.ByteIntervalMs) * time.Millisecond).String(),
		"--duration", d.String()}, CPUs: s.env.routerCPUs, Stdout: &out}, s.dir)
	if err != nil {
		run.Error = err.Error()
		return func() {}
	}
	return func() {
		if _, exited := p.WaitExit(10 * time.Second); !exited {
			p.Kill()
		}
		var st report.AttackStats
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			run.Error = fmt.Sprintf("slowheads: %v: %s", err, p.StderrTail())
			return
		}
		st.NoFile = a.NoFile
		run.Attack = &st
	}
}

// proxyArgv prefixes a proxy's command with prlimit when the scenario
// lowers its descriptor limit.
func proxyArgv(sc *scenario.Scenario, bin string, args []string) (string, []string) {
	if sc.SlowHeads == nil {
		return bin, args
	}
	n := strconv.Itoa(sc.SlowHeads.NoFile)
	return "prlimit", append([]string{"--nofile=" + n + ":" + n, "--", bin}, args...)
}

// startNginx starts the anchor under the same CPU list and quota as the
// routers; it is the run's "router" process for CPU accounting.
func (s *runSetup) startNginx(ctx context.Context, e *env, sc *scenario.Scenario) error {
	var err error
	if s.routerAddr, err = freePort(); err != nil {
		return err
	}
	conf, err := nginxConfig(s.dir, s.routerAddr, e.workers, s.cfg, sc.AccessLog == "file")
	if err != nil {
		return err
	}
	confPath := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := s.startProxy(sc, "nginx", e.nginx, []string{"-p", s.dir, "-c", confPath, "-e", filepath.Join(s.dir, "nginx-error.log")}); err != nil {
		return err
	}
	return s.router.WaitHealthy(ctx, "http://"+s.routerAddr+"/", 10*time.Second)
}

func (s *runSetup) startControlPlane(ctx context.Context, e *env) error {
	p, err := startChild(proc.Spec{Name: "controlplane", Path: e.controlplane,
		Args: []string{"--config", s.cpCfgPath, "--listen", s.cpAddr}, CPUs: e.generatorCPUs}, s.dir)
	if err != nil {
		return err
	}
	s.cp = p
	return p.WaitHealthy(ctx, "http://"+s.cpAddr+"/healthz", 10*time.Second)
}

// writeConfig replaces path atomically (temporary file and rename), the way
// a deploy tool updates a watched config.
func writeConfig(path string, cfg *config.Config) error {
	doc, err := config.Marshal(cfg)
	if err != nil {
		return err
	}
	return writeAtomic(path, doc)
}

func writeAtomic(path string, doc []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// expectedPlacements maps each routing key of the targets to the placement
// the config routes it to (contract §2.2).
func expectedPlacements(cfg *config.Config, targets []scenario.Target) map[string]string {
	out := map[string]string{}
	for _, t := range targets {
		p, ok := cfg.Routes[t.RoutingKey]
		if !ok {
			p = cfg.DefaultPlacement
		}
		out[t.RoutingKey] = p
	}
	return out
}

// expectedShares is the share of the load each placement gets when every
// key is served by its own placement.
func expectedShares(expected map[string]string, targets []scenario.Target) map[string]float64 {
	total := 0
	for _, t := range targets {
		total += t.Weight
	}
	out := map[string]float64{}
	for _, t := range targets {
		out[expected[t.RoutingKey]] += float64(t.Weight) / float64(total)
	}
	return out
}

// misrouted counts 2xx answers without failover that came from a placement
// other than the one the config routes their key to.
func misrouted(expected map[string]string, targets []scenario.Target, recs []metrics.Record) int {
	n := 0
	for _, r := range recs {
		if !r.Success() || r.Failover != "" || r.Target < 0 || r.Target >= len(targets) {
			continue
		}
		if r.Served != expected[targets[r.Target].RoutingKey] {
			n++
		}
	}
	return n
}

// procStatsOf converts two /proc samples around a load window; cores is
// the budget the utilisation is a fraction of.
func procStatsOf(before, after procStats, requests int, window time.Duration, cores float64) *report.ProcStats {
	cpu := (after.CPU - before.CPU).Seconds()
	st := &report.ProcStats{CPUSeconds: cpu, MaxRSSMiB: float64(after.MaxRSSB) / (1 << 20),
		ThrottledMs: msOf(after.Throttled - before.Throttled)}
	if requests > 0 {
		st.CPUPerKReqMs = cpu * 1000 / float64(requests) * 1000
	}
	if window > 0 && cores > 0 {
		st.Utilization = cpu / window.Seconds() / cores
	}
	return st
}

func describeAction(a scenario.Action) string {
	switch a.Kind {
	case scenario.ActionChaos:
		var compact bytes.Buffer
		if json.Compact(&compact, a.Chaos) != nil {
			return a.Cell + " " + string(a.Chaos)
		}
		return a.Cell + " " + compact.String()
	case scenario.ActionChaosReset:
		return a.Cell + " reset"
	case scenario.ActionConfigWrite, scenario.ActionCPPut:
		if a.Invalid {
			return "invalid document " + a.Version
		}
		return "version " + a.Version
	}
	return "control plane"
}
