package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/loadgen"
	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// attackOptions are the flags of `harness attack`.
type attackOptions struct {
	scenario, scenarios string
	target, name        string
	share, out          string
	start, barrier      string
	routerAdmin         string
	durationScale       float64
	conns               int
}

func attackCmd() *cobra.Command {
	var o attackOptions
	cmd := &cobra.Command{
		Use:   "attack --scenario NAME --target URL --share I/N --out FILE (--start TIME | --barrier URL)",
		Short: "Run one attacker's share of a scenario (its rate / N on the shared timeline) and write every raw result",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runAttack(cmd.Context(), &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.scenario, "scenario", "", "scenario name (in --scenarios) or file (required)")
	f.StringVar(&o.scenarios, "scenarios", "scenarios", "directory of scenario files")
	f.StringVar(&o.target, "target", "", "the router's proxy URL, http://HOST:PORT (required)")
	f.StringVar(&o.name, "name", report.TargetGo, "the proxy's name in the report (go, go-tuned, pingora, nginx, a floor)")
	f.StringVar(&o.share, "share", "", "this attacker's share I/N: it sends requests I, I+N, I+2N, … of the schedule (required)")
	f.StringVar(&o.out, "out", "", "raw result file to write (required)")
	f.StringVar(&o.start, "start", "", "the schedule's start, RFC 3339 (e.g. 2026-12-01T16:00:00Z), on this host's clock")
	f.StringVar(&o.barrier, "barrier", "", "URL of `harness barrier`: the start and this host's clock offset come from it")
	f.StringVar(&o.routerAdmin, "router-admin", "", "share 0 only: the router's admin URL, whose /metrics gives its CPU and memory over the schedule")
	f.Float64Var(&o.durationScale, "duration-scale", 1, "multiply the scenario's duration (not of a fixed-timing scenario)")
	f.IntVar(&o.conns, "conns", 0, "this attacker's connections (default: the scenario's divided by N, rounded up)")
	for _, req := range []string{"scenario", "target", "share", "out"} {
		cmd.MarkFlagRequired(req)
	}
	return cmd
}

// parseShare reads I/N.
func parseShare(s string) (loadgen.Share, error) {
	i, n, ok := strings.Cut(s, "/")
	idx, err1 := strconv.Atoi(i)
	of, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || of < 1 || of > 10000 || idx < 0 || idx >= of {
		return loadgen.Share{}, fmt.Errorf("--share %q: want I/N with 0 <= I < N (N up to 10000)", s)
	}
	return loadgen.Share{Index: idx, Of: of}, nil
}

// attackNotApplicable says why attack cannot share a scenario ("" if it
// can): only a steady open loop splits into shares whose union is the
// whole run.
func attackNotApplicable(sc *scenario.Scenario) string {
	switch {
	case sc.Steps != nil:
		return "a capacity staircase adapts each step to the last, which needs one generator"
	case sc.ClosedLoop():
		return "a closed loop has no schedule to split (each connection sends when the last answer came)"
	case sc.UsesVegeta():
		return "it uses vegeta; attack shares loadgen's schedule"
	case len(sc.Timeline) > 0:
		return "its timeline actions need the processes of one run (use compare --target)"
	case sc.SlowHeads != nil:
		return "its slow-head attack needs a router the harness starts"
	}
	return ""
}

// loadScenario is a scenario by file path, or by name in dir.
func loadScenario(root, dir, nameOrFile string) (*scenario.Scenario, error) {
	if strings.HasSuffix(nameOrFile, ".json") || strings.ContainsRune(nameOrFile, '/') {
		return scenario.Load(abs(root, nameOrFile), root)
	}
	return scenario.Load(filepath.Join(abs(root, dir), nameOrFile+".json"), root)
}

func runAttack(ctx context.Context, o *attackOptions) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	share, err := parseShare(o.share)
	if err != nil {
		return err
	}
	addr, err := hostPort(o.target)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	// Every request goes to --target: a proxy, not the direct baseline
	// (which sends each key to its own cell).
	if !slices.Contains(report.AllTargets, o.name) || o.name == report.TargetDirect {
		return fmt.Errorf("--name %q: want the proxy's name, one of %s", o.name, strings.Join(slices.DeleteFunc(slices.Clone(report.AllTargets),
			func(t string) bool { return t == report.TargetDirect }), ", "))
	}
	if (o.start == "") == (o.barrier == "") {
		return errors.New("give the start as exactly one of --start TIME and --barrier URL")
	}
	if o.durationScale <= 0 || o.durationScale > 10 {
		return errors.New("--duration-scale: want a factor in (0, 10]")
	}
	var admin string
	if o.routerAdmin != "" {
		hp, err := hostPort(o.routerAdmin)
		if err != nil {
			return fmt.Errorf("--router-admin: %w", err)
		}
		admin = "http://" + hp
	}
	sc, err := loadScenario(root, o.scenarios, o.scenario)
	if err != nil {
		return err
	}
	if why := attackNotApplicable(sc); why != "" {
		return fmt.Errorf("scenario %s cannot be shared between attackers: %s", sc.Name, why)
	}
	cfg, err := sc.RouterConfig(root)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	conns := o.conns
	if conns <= 0 {
		conns = (sc.Connections() + share.Of - 1) / share.Of
	}
	d := sc.Duration(o.durationScale)
	host, _ := os.Hostname()
	h := attackHeader{Scenario: doc, DurationScale: o.durationScale, TargetName: o.name, TargetURL: o.target,
		Share: shareSpec{Index: share.Index, Of: share.Of}, Rate: sc.Rate, DurationMs: msOf(d), Conns: conns, Host: host,
		Expected: expectedPlacements(cfg, sc.Targets), BootstrapVersion: cfg.Version}

	// Scheduled together, the attackers may start before the router.
	if err := waitDial(ctx, addr, targetWait); err != nil {
		return err
	}
	l := newLoad(sc.Targets, func(int) string { return addr })
	defer l.close()
	// The warm-up runs on this attacker's own clock, before the barrier:
	// every attacker arrives with its connections open.
	l.sharedOpenLoop(sc.Rate, conns, warmup, share, time.Time{})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	localStart, err := o.startTime(ctx, share, &h)
	if err != nil {
		return err
	}
	if early := time.Until(localStart); early < 0 {
		return fmt.Errorf("share %d/%d: the start %s passed %s before this attacker was ready; give a later start",
			share.Index, share.Of, h.Start.UTC().Format(time.RFC3339Nano), (-early).Round(time.Millisecond))
	}
	logf("share %d/%d of %s: %d req/s of %d for %s on %d connections, start in %s", share.Index, share.Of, sc.Name,
		sc.Rate/share.Of, sc.Rate, d, conns, time.Until(localStart).Round(time.Millisecond))
	// The router is read just before the start, so its window holds the
	// schedule, not the warm-ups.
	time.Sleep(time.Until(localStart) - 100*time.Millisecond)
	var before processMetrics
	var routerAt time.Time
	if admin != "" && share.Index == 0 {
		if before, err = processMetricsOf(ctx, admin); err != nil {
			return fmt.Errorf("--router-admin: %w", err)
		}
		routerAt = time.Now()
	}
	gen0, _ := readProcStats(os.Getpid())
	recs := l.sharedOpenLoop(sc.Rate, conns, d, share, localStart)
	gen1, _ := readProcStats(os.Getpid())
	h.GeneratorCPUSeconds = (gen1.CPU - gen0.CPU).Seconds()
	if !routerAt.IsZero() {
		after, err := processMetricsOf(ctx, admin)
		if err != nil {
			return fmt.Errorf("--router-admin: %w", err)
		}
		h.Router = &routerWindow{CPUSecondsBefore: before.cpu.Seconds(), CPUSecondsAfter: after.cpu.Seconds(),
			RSSBytesAfter: after.rssBytes, WallMs: msOf(time.Since(routerAt))}
	}
	if err := writeAttackFile(o.out, h, recs); err != nil {
		return err
	}
	s := metrics.Summarize(recs, d)
	logf("share %d/%d: %d requests, %.3f %% success, p50 %.3f ms, p99 %.3f ms, %.2f %% late sends; wrote %s",
		share.Index, share.Of, s.Requests, 100*s.SuccessRate, s.Latency.P50, s.Latency.P99, 100*s.LateFraction, o.out)
	return nil
}

// sharedOpenLoop sends share's part of rate req/s for d from start (zero:
// now), with Start relative to start.
func (l *load) sharedOpenLoop(rate, conns int, d time.Duration, share loadgen.Share, start time.Time) []metrics.Record {
	res, err := loadgen.Attack(loadgen.Plan{Requests: l.wire, Rate: rate, Duration: d, Conns: conns, Timeout: requestTimeout,
		Pool: l.pool, Share: share, Start: start})
	return fromLoadgen(res, err, 0)
}

// startTime is the schedule's start on this host's clock: from the
// command line, or from the barrier, corrected by this host's measured
// offset against the barrier's clock (recorded in h).
func (o *attackOptions) startTime(ctx context.Context, share loadgen.Share, h *attackHeader) (time.Time, error) {
	if o.start != "" {
		t, err := time.Parse(time.RFC3339Nano, o.start)
		if err != nil {
			return t, fmt.Errorf("--start: %w", err)
		}
		h.Start, h.StartSource = t, "command line"
		return t, nil
	}
	base := strings.TrimRight(o.barrier, "/")
	if _, err := url.Parse(base); err != nil {
		return time.Time{}, fmt.Errorf("--barrier: %w", err)
	}
	offset, uncertainty, err := clockOffset(ctx, base+"/clock")
	for deadline := time.Now().Add(targetWait); err != nil && time.Now().Before(deadline) && ctx.Err() == nil; {
		// The barrier may not be up yet.
		time.Sleep(time.Second)
		offset, uncertainty, err = clockOffset(ctx, base+"/clock")
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("--barrier: %w", err)
	}
	var reply arriveReply
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/arrive?share=%d&of=%d", base, share.Index, share.Of), nil)
	if err != nil {
		return time.Time{}, err
	}
	logf("share %d/%d: waiting at the barrier %s (clock offset %.3f ms ± %.3f ms)", share.Index, share.Of, base, msOf(offset), msOf(uncertainty))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("--barrier: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("--barrier: POST /arrive: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return time.Time{}, fmt.Errorf("--barrier: %w", err)
	}
	off, unc := msOf(offset), msOf(uncertainty)
	h.Start, h.StartSource, h.ClockOffsetMs, h.ClockUncertaintyMs = reply.Start, "barrier", &off, unc
	return reply.Start.Add(-offset), nil
}

// targetWait is how long an attacker waits for its target and the
// barrier to come up.
const targetWait = 5 * time.Minute

// clockRounds is how many round trips measure the clock offset; the one
// with the smallest delay bounds the error best.
const clockRounds = 8

// clockOffset is the barrier's clock minus this host's, from the round
// trip with the smallest delay (NTP's estimate: the barrier read its clock
// halfway through), and half that delay, the bound of its error.
func clockOffset(ctx context.Context, url string) (offset, uncertainty time.Duration, err error) {
	client := &http.Client{Timeout: 5 * time.Second}
	best := time.Duration(-1)
	for range clockRounds {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, err
		}
		sent := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		var reply clockReply
		err = json.NewDecoder(resp.Body).Decode(&reply)
		resp.Body.Close()
		rtt := time.Since(sent)
		if err != nil {
			return 0, 0, fmt.Errorf("GET %s: %w", url, err)
		}
		if best < 0 || rtt < best {
			// The wall clock of "sent" plus half the round trip, against
			// the barrier's reading.
			best, offset = rtt, reply.Now.Sub(sent.Round(0).Add(rtt/2))
		}
	}
	return offset, best / 2, nil
}
