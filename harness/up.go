package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/report"
	"cellbench/harness/scenario"
	"cellbench/internal/proc"
)

// upTargets are the proxies `harness up` can start.
var upTargets = []string{report.TargetGo, report.TargetGoTuned, report.TargetPingora, report.TargetNginx}

// upCmd starts the stack for a person to poke at and keeps it up until
// Ctrl-C or SIGTERM (main's handler stops every process), or until one of
// its processes exits.
func upCmd() *cobra.Command {
	var o options
	var cfgFile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start mock cells, the control plane, the routers and nginx (when installed) for a person to poke at; Ctrl-C stops everything",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("targets") {
				o.targets = strings.Join(upTargets, ",")
			}
			if !cmd.Flags().Changed("router-cpu-quota") {
				o.quota = 0 // nothing is measured
			}
			targets, err := parseTargets(o.targets)
			if err != nil {
				return err
			}
			for _, t := range targets {
				if !slices.Contains(upTargets, t) {
					return fmt.Errorf("--targets: harness up starts %s, not %s", strings.Join(upTargets, ", "), t)
				}
			}
			if o.out == "" {
				if o.out, err = os.MkdirTemp("", "cellbench-up-"); err != nil {
					return err
				}
			}
			e, dir, err := o.prepare()
			if err != nil {
				return err
			}
			defer removeQuota()
			st, err := startStack(cmd.Context(), e, cfgFile, targets, dir)
			if err != nil {
				stopAll()
				return err
			}
			// Ctrl-C and SIGTERM are main's to handle (it stops every
			// process and exits); a process that exits on its own
			// brings the rest down here.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			st.print(os.Stdout)
			p := st.waitAnyExit()
			select {
			case <-sigs:
				select {} // main's handler is stopping everything and exits
			default:
			}
			stopAll()
			return fmt.Errorf("%s exited (%v): %s", p.Name(), p.Err(), p.StderrTail())
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&cfgFile, "config", "config/examples/demo.json", "router config (its endpoints are replaced by the mock cells' addresses)")
	return cmd
}

// stack is what `harness up` started.
type stack struct {
	dir, cfgPath string
	cells        map[string]string
	cellsAdmin   string
	cp           string
	proxies      []upProxy
	skipped      []string
	procs        []*proc.Process
}

type upProxy struct{ target, addr, admin string }

// startStack starts one mock cell per placement of the config, the
// control plane serving the config, every router (subscribed to the
// control plane) and nginx (a static config from the same routes).
func startStack(ctx context.Context, e *env, cfgFile string, targets []string, dir string) (*stack, error) {
	sc := &scenario.Scenario{Config: cfgFile, ControlPlane: true}
	cfg, err := sc.RouterConfig(e.root)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Placements))
	for name := range cfg.Placements {
		names = append(names, name)
	}
	sort.Strings(names)
	st := &stack{dir: dir, cfgPath: filepath.Join(dir, "router.json")}
	mocks, ready, err := startMocks(e.mockbackends, e.generatorCPUs, dir, names)
	if err != nil {
		return nil, err
	}
	st.procs, st.cells, st.cellsAdmin = append(st.procs, mocks), ready.Cells, ready.Admin
	for name, p := range cfg.Placements {
		p.Endpoint = "http://" + ready.Cells[name]
	}
	if err := writeConfig(st.cfgPath, cfg); err != nil {
		return nil, err
	}
	base := &runSetup{env: e, dir: dir, cfg: cfg, cfgPath: st.cfgPath, cpCfgPath: filepath.Join(dir, "controlplane.json")}
	if base.cpAddr, err = freePort(); err != nil {
		return nil, err
	}
	if err := writeConfig(base.cpCfgPath, cfg); err != nil {
		return nil, err
	}
	if err := base.startControlPlane(ctx, e); err != nil {
		return nil, err
	}
	st.cp, st.procs = base.cpAddr, append(st.procs, base.cp)
	for _, t := range targets {
		rs := &runSetup{env: e, dir: filepath.Join(dir, t), cfg: cfg}
		if err := os.MkdirAll(rs.dir, 0o755); err != nil {
			return nil, err
		}
		p := upProxy{target: t}
		if t == report.TargetNginx {
			if e.nginx == "" {
				st.skipped = append(st.skipped, "nginx: not installed (apt-get install nginx-light)")
				continue
			}
			if err := rs.startNginx(ctx, e, sc); err != nil {
				return nil, err
			}
			p.addr = rs.routerAddr
		} else {
			if p.addr, err = freePort(); err != nil {
				return nil, err
			}
			if p.admin, err = freePort(); err != nil {
				return nil, err
			}
			bin, args := e.routerArgv(t, st.cfgPath, p.addr, p.admin, filepath.Join(rs.dir, "access.log"), base.cpAddr)
			if err := rs.startProxy(sc, t, bin, args); err != nil {
				return nil, err
			}
			if err := rs.router.WaitHealthy(ctx, "http://"+p.admin+"/healthz", 20*time.Second); err != nil {
				return nil, err
			}
		}
		st.proxies, st.procs = append(st.proxies, p), append(st.procs, rs.router)
	}
	return st, nil
}

// print lists the URLs and example requests.
func (st *stack) print(w io.Writer) {
	fmt.Fprintf(w, "cellbench is up; logs and configs in %s. Ctrl-C stops everything.\n\n", st.dir)
	names := make([]string, 0, len(st.cells))
	for n := range st.cells {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s http://%s\n", "cell "+n, st.cells[n])
	}
	fmt.Fprintf(w, "  %-14s http://%s  (chaos API: POST/DELETE /cells/NAME/chaos)\n", "cells admin", st.cellsAdmin)
	fmt.Fprintf(w, "  %-14s http://%s  (GET /status, GET /config, PUT /config)\n", "control plane", st.cp)
	for _, p := range st.proxies {
		line := fmt.Sprintf("  %-14s http://%s", p.target, p.addr)
		if p.admin != "" {
			line += fmt.Sprintf("  (admin http://%s: /healthz, /metrics, /debug/config, /debug/upstreams)", p.admin)
		} else {
			line += "  (a static config: no reloads or pushes)"
		}
		fmt.Fprintln(w, line)
	}
	for _, s := range st.skipped {
		fmt.Fprintf(w, "  skipped: %s\n", s)
	}
	if len(st.proxies) == 0 {
		return
	}
	r := st.proxies[0].addr
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  curl -si -H 'X-Routing-Key: acme' http://%s/hello        # routed by key; X-Routed-To, X-Config-Version explain it\n", r)
	fmt.Fprintf(w, "  curl -si http://%s/hello                                 # no key: the default placement\n", r)
	fmt.Fprintf(w, "  curl -s http://%s/status                                 # routers connected to the control plane, acked versions\n", st.cp)
	fmt.Fprintf(w, "  sed 's/\"version\": *\"[^\"]*\"/\"version\":\"poke-2\"/' %s | curl -s -X PUT --data-binary @- http://%s/config   # push a new version to every router\n", st.cfgPath, st.cp)
	if len(names) > 0 {
		fmt.Fprintf(w, "  curl -s -X POST -d '{\"down\":true}' http://%s/cells/%s/chaos   # take a cell down; DELETE the same URL to bring it back\n", st.cellsAdmin, names[0])
	}
	fmt.Fprintln(w, "\nready")
}

// waitAnyExit blocks until one of the stack's processes exits and returns it.
func (st *stack) waitAnyExit() *proc.Process {
	exited := make(chan *proc.Process, len(st.procs))
	for _, p := range st.procs {
		go func() {
			<-p.Done()
			exited <- p
		}()
	}
	return <-exited
}
