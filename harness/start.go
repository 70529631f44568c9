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
	"cellbench/harness/report"
	"cellbench/harness/scenario"
	"cellbench/internal/proc"
	"cellbench/mockbackends/ready"
)

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
