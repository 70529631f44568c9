package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"cellbench/config"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// remoteTarget is a router the harness did not start (`compare --target
// NAME=URL[,admin=URL]`): the load goes to its proxy address, its CPU and
// memory come from its admin listener's /metrics (contract §6), and
// timeline actions go through URLs only.
type remoteTarget struct {
	name string
	// proxy is the host:port the load is sent to; admin the admin
	// listener's base URL ("" when not given: no CPU, memory or live
	// config).
	proxy string
	admin string
}

// remoteFlags are compare's flags for routers on other hosts.
type remoteFlags struct {
	targets []string
	// cellsAdmin is the mock cells' chaos API (host:port) and
	// controlPlane the control plane's (host:port); routerCores is the
	// remote router's CPU budget, the divisor of its utilisation.
	cellsAdmin   string
	controlPlane string
	routerCores  float64
}

func (f *remoteFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.targets, "target", nil, "a router the harness did not start, NAME=URL[,admin=URL] (repeatable; NAME one of "+
		strings.Join(report.Routers, ", ")+"); only these targets run")
	fl.StringVar(&f.cellsAdmin, "cells-admin", "", "with --target: the mock cells' chaos API URL, for scenarios with chaos actions")
	fl.StringVar(&f.controlPlane, "control-plane", "", "with --target: the control plane's URL, for control-plane scenarios")
	fl.Float64Var(&f.routerCores, "router-cores", 0, "with --target: the remote router's CPU budget in cores, the divisor of its utilisation (0: unknown, no utilisation)")
}

// remoteCPUs is the budget's CPU list of routers on other hosts.
const remoteCPUs = "of its own host (remote: CPU and memory from its /metrics)"

// parseRemoteTarget reads NAME=URL[,admin=URL].
func parseRemoteTarget(spec string) (*remoteTarget, error) {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok || !slices.Contains(report.Routers, name) {
		return nil, fmt.Errorf("--target %q: want NAME=URL[,admin=URL] with NAME one of %s", spec, strings.Join(report.Routers, ", "))
	}
	parts := strings.Split(rest, ",")
	r := &remoteTarget{name: name}
	var err error
	if r.proxy, err = hostPort(parts[0]); err != nil {
		return nil, fmt.Errorf("--target %s: %w", name, err)
	}
	for _, p := range parts[1:] {
		v, ok := strings.CutPrefix(p, "admin=")
		if !ok {
			return nil, fmt.Errorf("--target %s: unknown option %q (want admin=URL)", name, p)
		}
		hp, err := hostPort(v)
		if err != nil {
			return nil, fmt.Errorf("--target %s: admin: %w", name, err)
		}
		r.admin = "http://" + hp
	}
	return r, nil
}

// hostPort is the host:port of an http:// URL.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%q: want http://HOST:PORT", raw)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", fmt.Errorf("%q: want http://HOST:PORT", raw)
	}
	return u.Host, nil
}

// prepareRemote is prepare for remote targets: nothing is built, pinned
// or started; the scenarios run against the named routers only.
func (o *options) prepareRemote(f *remoteFlags) (*env, []string, string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, nil, "", err
	}
	e := &env{root: root, log: logf, scale: o.durationScale, rounds: o.rounds, quick: o.quick,
		routerCPUs: remoteCPUs, routerCores: f.routerCores, remote: map[string]*remoteTarget{}}
	if o.quick {
		e.scale, e.rounds = quickScale, 1
	}
	if e.scale <= 0 || e.scale > 10 || e.rounds < 1 || e.rounds > 50 || f.routerCores < 0 {
		return nil, nil, "", errors.New("--duration-scale wants (0, 10], --rounds 1..50, --router-cores >= 0")
	}
	online, err := onlineCPUs()
	if err != nil {
		return nil, nil, "", err
	}
	e.cores, e.generatorCores, e.allCPUs, e.generatorCPUs = len(online), len(online), online.String(), online.String()
	var names []string
	for _, spec := range f.targets {
		r, err := parseRemoteTarget(spec)
		if err != nil {
			return nil, nil, "", err
		}
		if e.remote[r.name] != nil {
			return nil, nil, "", fmt.Errorf("--target %s given twice", r.name)
		}
		if r.admin == "" {
			logf("--target %s has no admin=URL: its CPU, memory and live config are not read", r.name)
		}
		e.remote[r.name] = r
		names = append(names, r.name)
	}
	if f.cellsAdmin != "" {
		if e.cellsAdmin, err = hostPort(f.cellsAdmin); err != nil {
			return nil, nil, "", fmt.Errorf("--cells-admin: %w", err)
		}
	}
	if f.controlPlane != "" {
		if e.controlPlaneAddr, err = hostPort(f.controlPlane); err != nil {
			return nil, nil, "", fmt.Errorf("--control-plane: %w", err)
		}
	}
	out, err := reportDir(root, o.out)
	return e, names, out, err
}

// remoteNotApplicable says why a scenario cannot run against a remote
// router with the URLs given ("" if it can).
func (e *env) remoteNotApplicable(sc *scenario.Scenario) string {
	var needs []string
	if sc.SlowHeads != nil {
		needs = append(needs, "lowers the router's descriptor limit at its start (prlimit), which needs a router the harness starts")
	}
	if sc.ControlPlane && e.controlPlaneAddr == "" {
		needs = append(needs, "pushes config through the control plane: give --control-plane URL (the one the router connects to)")
	}
	seen := map[string]bool{}
	for _, a := range sc.Timeline {
		if seen[a.Kind] {
			continue
		}
		seen[a.Kind] = true
		switch a.Kind {
		case scenario.ActionConfigWrite:
			if e.controlPlaneAddr == "" {
				needs = append(needs, "rewrites the router's config file (config_write), which is on the router's host: give --control-plane URL, with the router following that control plane, to send the rewrites as pushes")
			}
		case scenario.ActionCPKill, scenario.ActionCPStart:
			needs = append(needs, "kills and restarts the control plane ("+a.Kind+"), which needs a control plane the harness starts")
		case scenario.ActionChaos, scenario.ActionChaosReset:
			if e.cellsAdmin == "" {
				needs = append(needs, "injects faults into the cells ("+a.Kind+"): give --cells-admin URL (the mock cells' chaos API)")
			}
		}
	}
	if len(needs) == 0 {
		return ""
	}
	return "remote router: scenario " + sc.Name + " " + strings.Join(needs, "; ")
}

// startRemote sets a run up against a remote router: its live config (for
// the expected placements and the documents a control-plane scenario
// pushes), the cells' chaos API and the control plane by address.
func (s *runSetup) startRemote(ctx context.Context, sc *scenario.Scenario, r *remoteTarget) error {
	s.remote, s.routerAddr = r, r.proxy
	s.ready.Admin, s.cpAddr = s.env.cellsAdmin, s.env.controlPlaneAddr
	cfg, err := sc.RouterConfig(s.env.root)
	if err != nil {
		return err
	}
	s.cfg = cfg
	if r.admin == "" {
		return waitDial(ctx, r.proxy, 10*time.Second)
	}
	live, source, err := r.liveConfig(ctx)
	if err != nil {
		return err
	}
	if needsPush(sc) && source != "control_plane" {
		return fmt.Errorf("scenario %s changes the config through the control plane, but the remote router %s takes its config from %q: start it with --control-plane (the one of --control-plane here)",
			sc.Name, r.name, source)
	}
	if !slices.Equal(sortedRoutes(live), sortedRoutes(cfg)) || live.DefaultPlacement != cfg.DefaultPlacement {
		s.env.log("%s: the remote router's routes (version %s) differ from scenario %s's config; expected placements follow the router's",
			r.name, live.Version, sc.Name)
	}
	s.cfg = live
	return nil
}

func sortedRoutes(c *config.Config) []string {
	var out []string
	for k, p := range c.Routes {
		out = append(out, k+"="+p)
	}
	slices.Sort(out)
	return out
}

// needsPush reports whether a remote run changes the router's config:
// through the control plane, the only way to a router on another host.
func needsPush(sc *scenario.Scenario) bool {
	for _, a := range sc.Timeline {
		if a.ConfigAction() {
			return true
		}
	}
	return sc.ControlPlane
}

// liveConfig is the config the router runs and its source, "file" or
// "control_plane" (GET /debug/config, contract §6).
func (r *remoteTarget) liveConfig(ctx context.Context) (*config.Config, string, error) {
	var doc struct {
		Source string          `json:"source"`
		Config json.RawMessage `json:"config"`
	}
	if err := getJSON(ctx, r.admin+"/debug/config", &doc); err != nil {
		return nil, "", fmt.Errorf("remote router %s: %w", r.name, err)
	}
	cfg, err := config.Parse(doc.Config)
	if err != nil {
		return nil, "", fmt.Errorf("remote router %s: its /debug/config: %w", r.name, err)
	}
	return cfg, doc.Source, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(io.LimitReader(body, 4<<20)).Decode(v)
}

// get is the body of a 200 answer to GET url.
func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := actionClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// waitDial waits until addr accepts a TCP connection.
func waitDial(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remote router at %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processMetrics is what a router's /metrics says about its process.
type processMetrics struct {
	cpu      time.Duration
	rssBytes int64
	fds      int
}

// processMetricsOf reads process_cpu_seconds_total,
// process_resident_memory_bytes and process_open_fds from a router's
// /metrics.
func processMetricsOf(ctx context.Context, admin string) (processMetrics, error) {
	var m processMetrics
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := get(ctx, admin+"/metrics")
	if err != nil {
		return m, err
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(body, 8<<20))
	if err != nil {
		return m, fmt.Errorf("%s/metrics: %w", admin, err)
	}
	value := func(name string) (float64, error) {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 {
			return 0, fmt.Errorf("%s/metrics: no single %s series", admin, name)
		}
		mt := f.Metric[0]
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue(), nil
		case mt.Gauge != nil:
			return mt.Gauge.GetValue(), nil
		case mt.Untyped != nil:
			return mt.Untyped.GetValue(), nil
		}
		return 0, fmt.Errorf("%s/metrics: %s is neither a counter nor a gauge", admin, name)
	}
	cpu, err := value("process_cpu_seconds_total")
	if err != nil {
		return m, err
	}
	rss, err := value("process_resident_memory_bytes")
	if err != nil {
		return m, err
	}
	fds, err := value("process_open_fds")
	if err != nil {
		return m, err
	}
	m.cpu = time.Duration(cpu * float64(time.Second))
	m.rssBytes, m.fds = int64(rss), int(fds)
	return m, nil
}

// stats is the remote router's CPU and memory now, as a /proc sample of a
// local router would give them; a failed read gives zeros (the run's CPU
// then shows as missing rather than wrong).
func (r *remoteTarget) stats() procStats {
	if r.admin == "" {
		return procStats{}
	}
	m, err := processMetricsOf(context.Background(), r.admin)
	if err != nil {
		logf("%s: %v", r.name, err)
		return procStats{}
	}
	return procStats{CPU: m.cpu, MaxRSSB: m.rssBytes}
}

// sample is one reading of the remote router for the run's samples.
func (r *remoteTarget) sample() (report.ProcSample, bool) {
	if r.admin == "" {
		return report.ProcSample{}, false
	}
	m, err := processMetricsOf(context.Background(), r.admin)
	if err != nil {
		return report.ProcSample{}, false
	}
	return report.ProcSample{RSSMiB: float64(m.rssBytes) / (1 << 20), FDs: m.fds}, true
}

// compareRemote is compare against the routers of --target: the same
// rounds, measurement and report, without builds, local proxies or the
// parity suite (it starts its own routers).
func compareRemote(ctx context.Context, o *options, f *remoteFlags, only string) error {
	e, targets, out, err := o.prepareRemote(f)
	if err != nil {
		return err
	}
	scs, err := loadScenarios(e, o.scenarios, only)
	if err != nil {
		return err
	}
	return compare(ctx, e, scs, targets, out, false)
}
