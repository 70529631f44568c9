package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/metrics"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
	"cellbench/internal/stats"
)

// crosscheckTolerance is how far the harness's closed-loop figures may be
// from wrk's before the crosscheck fails.
const crosscheckTolerance = 0.15

// crossResult is one proxy measured by both tools on the same setup.
type crossResult struct {
	Target     string  `json:"target"`
	Round      int     `json:"round"`
	HarnessRPS float64 `json:"harness_rps"`
	WrkRPS     float64 `json:"wrk_rps"`
	HarnessP50 float64 `json:"harness_p50_ms"`
	WrkP50     float64 `json:"wrk_p50_ms"`
	// The means are shown, not judged: by Little's law they follow the
	// throughput, so they tell a p50 that differs because the latency
	// distribution's shape differs from one that differs in queueing.
	HarnessMean float64 `json:"harness_mean_ms"`
	WrkMean     float64 `json:"wrk_mean_ms"`
	// The latency distributions at shapePercentiles (medians over the
	// windows), shown, not judged: where the two tools' p50s differ, they
	// show which part of the distribution moved.
	HarnessShape []float64 `json:"harness_percentiles_ms"`
	WrkShape     []float64 `json:"wrk_percentiles_ms"`
	// Every window of each tool, in the order they ran: their spread is
	// how far the proxy itself moved between windows of one tool.
	HarnessWindows []crossWindow `json:"harness_windows"`
	WrkWindows     []crossWindow `json:"wrk_windows"`
	HarnessErrs    int           `json:"harness_errors"`
	WrkErrs        int           `json:"wrk_errors"`
	Error          string        `json:"error,omitempty"`
}

// crossWindow is one tool's window.
type crossWindow struct {
	RPS    float64 `json:"rps"`
	P50    float64 `json:"p50_ms"`
	MeanMs float64 `json:"mean_ms"`
	// Percentiles are at shapePercentiles, in ms.
	Percentiles []float64 `json:"percentiles_ms"`
}

func (c crossResult) agrees() bool {
	return c.Error == "" && within(c.HarnessRPS, c.WrkRPS) && within(c.HarnessP50, c.WrkP50)
}

// shapePercentiles are the points of the latency distribution both tools
// print beside the judged figures.
var shapePercentiles = []float64{10, 25, 50, 75, 90, 99}

func within(a, b float64) bool {
	return b > 0 && math.Abs(a-b)/b <= crosscheckTolerance
}

func crosscheckCmd() *cobra.Command {
	var o options
	var file string
	var conns, pairs int
	var takeTurns bool
	var seconds float64
	cmd := &cobra.Command{
		Use:   "crosscheck",
		Short: "Measure every proxy closed loop with the harness's generator and with wrk on the same setup and budget; fail when they differ by more than 15 %",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wrk, err := exec.LookPath("wrk")
			if err != nil {
				return fmt.Errorf("wrk is needed (apt-get install wrk): %w", err)
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			defer removeQuota()
			sc, err := scenario.Load(abs(e.root, file), e.root)
			if err != nil {
				return err
			}
			targets, err := parseTargets(o.targets)
			if err != nil {
				return err
			}
			d := time.Duration(seconds * float64(time.Second))
			var results []crossResult
			for round := 1; round <= e.rounds; round++ {
				for _, t := range targets {
					if t == report.TargetDirect {
						continue // wrk sends to one address; direct spreads over the cells
					}
					if why := e.notApplicable(sc, t); why != "" {
						e.log("crosscheck %s: not applicable: %s", t, why)
						continue
					}
					dir := filepath.Join(out, "crosscheck", fmt.Sprintf("%s-%d", t, round))
					r := crosscheckOne(cmd.Context(), e, sc, t, dir, wrk, conns, pairs, d, takeTurns)
					r.Round = round
					e.log("crosscheck %s round %d: harness %.0f req/s p50 %.3f ms, wrk %.0f req/s p50 %.3f ms %s",
						t, round, r.HarnessRPS, r.HarnessP50, r.WrkRPS, r.WrkP50, r.Error)
					results = append(results, r)
				}
			}
			b, _ := json.MarshalIndent(results, "", "  ")
			if err := os.WriteFile(filepath.Join(out, "crosscheck.json"), append(b, '\n'), 0o644); err != nil {
				return err
			}
			return printCrosscheck(results, conns, d, takeTurns, e)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&file, "scenario", "scenarios/capacity.json", "scenario whose config and request shapes are used")
	cmd.Flags().IntVar(&conns, "conns", 64, "connections of both tools")
	cmd.Flags().Float64Var(&seconds, "seconds", 3, "seconds of each window")
	cmd.Flags().IntVar(&pairs, "pairs", 5, "windows of each tool; medians are compared")
	cmd.Flags().BoolVar(&takeTurns, "take-turns", false, "the tools take turns on the proxy, each window alone, instead of measuring it at once (each on its own connections)")
	return cmd
}

// crosscheckOne starts the target as a capacity run would, warms it up,
// then measures it closed loop with loadgen and with wrk, each on conns
// connections of its own, in windows of d: both at once, or taking turns.
func crosscheckOne(ctx context.Context, e *env, sc *scenario.Scenario, target, dir, wrk string, conns, pairs int, d time.Duration, takeTurns bool) crossResult {
	res := crossResult{Target: target}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	setup, err := start(ctx, e, sc, target, dir)
	if setup != nil {
		defer setup.stop()
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	l := newLoad(sc.Targets, func(int) string { return setup.routerAddr })
	defer l.close()
	l.closedLoop(conns, warmup, time.Now())

	script := filepath.Join(dir, "crosscheck.lua")
	if err := os.WriteFile(script, []byte(wrkScript(sc.Targets)), 0o644); err != nil {
		res.Error = err.Error()
		return res
	}
	// By default both tools measure the proxy at once, each on its own
	// connections, so whatever the machine does to the proxy during a
	// window it does to both: taking turns, even five times each, compared
	// the proxy's drift between windows (throughput moving 25-50 % from
	// one 3-s window to the next here) as much as the tools
	// (docs/measurement.md). Medians over the windows are compared.
	for i := 0; i < pairs; i++ {
		startWrk := func() <-chan wrkRun {
			ch := make(chan wrkRun, 1)
			go func() {
				w, err := runWrk(ctx, wrk, script, setup.routerAddr, conns, d)
				ch <- wrkRun{w, err}
			}()
			return ch
		}
		var wrkCh <-chan wrkRun
		if !takeTurns {
			wrkCh = startWrk()
		}
		recs := l.closedLoop(conns, d, time.Now())
		sum := metrics.Summarize(recs, d)
		res.HarnessWindows = append(res.HarnessWindows, crossWindow{sum.Throughput, sum.Latency.P50, sum.Latency.Mean, latencyShape(recs)})
		res.HarnessErrs += sum.Requests - sum.Successes
		if takeTurns {
			wrkCh = startWrk()
		}
		got := <-wrkCh
		if got.err != nil {
			res.Error = got.err.Error()
			return res
		}
		w := got.w
		shape := make([]float64, len(w.PercentilesUs))
		for j, us := range w.PercentilesUs {
			shape[j] = us / 1000
		}
		res.WrkWindows = append(res.WrkWindows, crossWindow{w.rps(), w.P50Us / 1000, w.MeanUs / 1000, shape})
		res.WrkErrs += w.Errors
	}
	res.HarnessRPS, res.HarnessP50, res.HarnessMean, res.HarnessShape = mediansOf(res.HarnessWindows)
	res.WrkRPS, res.WrkP50, res.WrkMean, res.WrkShape = mediansOf(res.WrkWindows)
	return res
}

// wrkRun is one wrk window's outcome.
type wrkRun struct {
	w   wrkDone
	err error
}

// windowSpread is one figure's spread over a tool's windows.
func windowSpread(ws []crossWindow, f func(crossWindow) float64) metrics.Spread {
	vals := make([]float64, len(ws))
	for i, w := range ws {
		vals[i] = f(w)
	}
	return metrics.SpreadOf(vals)
}

// mediansOf is the median over the windows of each compared figure and of
// each point of the latency distribution.
func mediansOf(ws []crossWindow) (rps, p50, mean float64, shape []float64) {
	median := func(f func(crossWindow) float64) float64 { return windowSpread(ws, f).Median }
	for j := range shapePercentiles {
		shape = append(shape, median(func(w crossWindow) float64 {
			if j < len(w.Percentiles) {
				return w.Percentiles[j]
			}
			return 0
		}))
	}
	return median(func(w crossWindow) float64 { return w.RPS }), median(func(w crossWindow) float64 { return w.P50 }),
		median(func(w crossWindow) float64 { return w.MeanMs }), shape
}

// latencyShape is the successful requests' latency at shapePercentiles, in
// ms, by the project's percentile definition.
func latencyShape(recs []metrics.Record) []float64 {
	var ms []float64
	for _, r := range recs {
		if r.Error == "" && r.Code/100 == 2 {
			ms = append(ms, float64(r.Latency)/float64(time.Millisecond))
		}
	}
	slices.Sort(ms)
	out := make([]float64, len(shapePercentiles))
	for i, p := range shapePercentiles {
		out[i] = stats.Percentile(ms, p/100)
	}
	return out
}

// runWrk runs wrk once, closed loop, and reads its done() line.
func runWrk(ctx context.Context, wrk, script, addr string, conns int, d time.Duration) (wrkDone, error) {
	secs := strconv.Itoa(max(1, int(math.Round(d.Seconds()))))
	cmd := exec.CommandContext(ctx, wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+secs+"s", "--timeout", "10s",
		"-s", script, "http://"+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkDone{}, fmt.Errorf("wrk: %v: %s", err, lastLines(string(out), 5))
	}
	return parseWrkDone(string(out))
}

// wrkScript sends the scenario's request shapes round-robin by weight, as
// the harness does, and prints wrk's own figures as one JSON line at the
// end (wrk's latency histogram has microsecond buckets).
func wrkScript(targets []scenario.Target) string {
	var b strings.Builder
	b.WriteString("local reqs = {}\nfunction init(args)\n")
	for _, t := range targets {
		body := "nil"
		if t.BodyBytes > 0 {
			body = fmt.Sprintf("string.rep(\"x\", %d)", t.BodyBytes)
		}
		var h strings.Builder
		fmt.Fprintf(&h, "[\"X-Routing-Key\"] = %q", t.RoutingKey)
		for _, k := range sortedKeys(t.Headers) {
			fmt.Fprintf(&h, ", [%q] = %q", k, t.Headers[k])
		}
		for w := 0; w < t.Weight; w++ {
			fmt.Fprintf(&b, "  reqs[#reqs + 1] = wrk.format(%q, %q, {%s}, %s)\n", t.Method, t.Path, h.String(), body)
		}
	}
	b.WriteString(`end
local i = 0
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  local shape = {}
  for _, p in ipairs({` + shapeList() + `}) do shape[#shape + 1] = tostring(latency:percentile(p)) end
  io.write(string.format("CROSSCHECK {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"mean_us\":%.1f,\"errors\":%d,\"percentiles_us\":[%s]}\n",
    summary.requests, summary.duration, latency:percentile(50), latency.mean, e.connect + e.read + e.write + e.status + e.timeout,
    table.concat(shape, ",")))
end
`)
	return b.String()
}

// wrkDone is the line the script's done() prints.
type wrkDone struct {
	Requests   int     `json:"requests"`
	DurationUs int64   `json:"duration_us"`
	P50Us      float64 `json:"p50_us"`
	MeanUs     float64 `json:"mean_us"`
	Errors     int     `json:"errors"`
	// PercentilesUs are at shapePercentiles.
	PercentilesUs []float64 `json:"percentiles_us"`
}

// shapeList is shapePercentiles as a Lua list.
func shapeList() string {
	parts := make([]string, len(shapePercentiles))
	for i, p := range shapePercentiles {
		parts[i] = strconv.FormatFloat(p, 'f', -1, 64)
	}
	return strings.Join(parts, ", ")
}

func (w wrkDone) rps() float64 {
	if w.DurationUs <= 0 {
		return 0
	}
	return float64(w.Requests-w.Errors) / (float64(w.DurationUs) / 1e6)
}

func parseWrkDone(out string) (wrkDone, error) {
	for _, line := range strings.Split(out, "\n") {
		if j, ok := strings.CutPrefix(line, "CROSSCHECK "); ok {
			var w wrkDone
			if err := json.Unmarshal([]byte(j), &w); err != nil {
				return w, fmt.Errorf("wrk done(): %w", err)
			}
			return w, nil
		}
	}
	return wrkDone{}, fmt.Errorf("wrk printed no CROSSCHECK line: %s", lastLines(out, 5))
}

func printCrosscheck(results []crossResult, conns int, d time.Duration, takeTurns bool, e *env) error {
	how := "both tools at once, the proxy serving both"
	if takeTurns {
		how = "the tools taking turns"
	}
	fmt.Printf("\nclosed loop, %d connections per tool, medians of windows of %s, %s; proxy on CPU(s) %s with quota %s, generators on CPU(s) %s\n\n",
		conns, d, how, e.routerCPUs, quotaText(e), e.generatorCPUs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tround\tharness req/s\twrk req/s\tdiff\tharness p50 ms\twrk p50 ms\tdiff\tagree (15 %)\tharness mean ms\twrk mean ms")
	windows := func(ws []crossWindow, f func(crossWindow) float64, format string) string {
		s := windowSpread(ws, f)
		return fmt.Sprintf(format+" ["+format+"–"+format+"]", s.Median, s.Min, s.Max)
	}
	rps := func(w crossWindow) float64 { return w.RPS }
	p50 := func(w crossWindow) float64 { return w.P50 }
	bad := 0
	for _, r := range results {
		agree := "yes"
		if !r.agrees() {
			agree = "NO"
			bad++
		}
		if r.Error != "" {
			agree = "ERROR " + firstLineOf(r.Error)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%+.1f %%\t%s\t%s\t%+.1f %%\t%s\t%.3f\t%.3f\n", r.Target, r.Round,
			windows(r.HarnessWindows, rps, "%.0f"), windows(r.WrkWindows, rps, "%.0f"), relDiff(r.HarnessRPS, r.WrkRPS),
			windows(r.HarnessWindows, p50, "%.3f"), windows(r.WrkWindows, p50, "%.3f"), relDiff(r.HarnessP50, r.WrkP50),
			agree, r.HarnessMean, r.WrkMean)
	}
	tw.Flush()
	printShapes(results)
	if bad > 0 {
		return fmt.Errorf("crosscheck: %d of %d measurements differ from wrk by more than %.0f %%", bad, len(results), 100*crosscheckTolerance)
	}
	fmt.Println("\nevery figure within 15 % of wrk's")
	return nil
}

// printShapes shows both tools' latency distributions, not judged.
func printShapes(results []crossResult) {
	fmt.Printf("\nlatency distribution, ms (medians of the windows; harness / wrk)\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	head := []string{"target", "round"}
	for _, p := range shapePercentiles {
		head = append(head, "p"+strconv.FormatFloat(p, 'f', -1, 64))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range results {
		if r.Error != "" || len(r.HarnessShape) != len(shapePercentiles) || len(r.WrkShape) != len(shapePercentiles) {
			continue
		}
		row := []string{r.Target, strconv.Itoa(r.Round)}
		for i := range shapePercentiles {
			row = append(row, fmt.Sprintf("%.3f / %.3f", r.HarnessShape[i], r.WrkShape[i]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func relDiff(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * (a - b) / b
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
