package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"cellbench/harness/metrics"
)

// Render writes report.md with its PNG charts and report.html into dir.
func Render(dir string, r *Results) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# cellbench compare — %s\n\n", r.StartedAt.Format("2006-01-02 15:04 UTC"))
	w("*What does an edge router gain or lose when it is written on Pingora (Rust) instead of Go's standard library?* ")
	w("The same scenarios ran against the Go router on two engines, the Pingora router, nginx as the anchor and a **direct** baseline (load generator → mock cell, no proxy), on loopback. ")
	w("Every number below comes from this run (`results.json` beside this file); `harness report %s` re-renders it.\n\n", filepath.Base(dir))
	writeSetup(w, r)
	writeSummary(w, r)
	writeParity(w, r)
	for i := range r.Scenarios {
		if err := writeScenario(w, dir, &r.Scenarios[i]); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return RenderHTML(dir, r)
}

type writer func(format string, args ...any)

func writeSetup(w writer, r *Results) {
	m, bud := r.Machine, r.Budget
	dirty := ""
	if m.GitDirty {
		dirty = " (with uncommitted changes)"
	}
	w("## Setup\n\n")
	w("| | |\n|---|---|\n")
	w("| CPU | %s, %d cores |\n", orDash(m.CPUModel), m.Cores)
	w("| kernel | %s |\n| Go | %s |\n| Rust | %s |\n", orDash(m.Kernel), orDash(m.GoVersion), orDash(m.RustVersion))
	w("| commit | `%s`%s |\n", orDash(m.GitCommit), dirty)
	quota := "no quota: the whole CPU list"
	if bud.RouterCPUQuota > 0 {
		quota = fmt.Sprintf("a CFS quota of **%.2f cores**", bud.RouterCPUQuota)
	}
	if bud.RouterWorkers > 0 {
		w("| CPU budget | every proxy under test (go, go-tuned, pingora, nginx) on CPU(s) **%s** with %s and `--workers %d` (nginx: `worker_processes %d`); load generator (this harness) and mock cells on CPU(s) **%s**; the control plane, when used, with the generator |\n",
			bud.RouterCPUs, quota, bud.RouterWorkers, bud.RouterWorkers, bud.GeneratorCPUs)
	} else {
		w("| CPU budget | routers started elsewhere, on CPU(s) **%s**, with the workers and limits they were started with (%s); load generator (this harness) and mock cells on CPU(s) **%s** |\n",
			bud.RouterCPUs, coresText(bud.RouterCores), bud.GeneratorCPUs)
	}
	if len(bud.TargetCPUQuota) > 0 {
		w("| **deliberately slowed** | %s (`--target-cpu-quota`: their own quota instead of the common one, to test `harness diff`; verdicts between targets on different budgets mean nothing) |\n", quotaList(bud.TargetCPUQuota))
	}
	w("| rounds | %d, interleaved (every target once per round); figures are the median [min–max] over the valid rounds |\n", max(r.Rounds, 1))
	w("| duration scale | %g (fixed-timing scenarios run at 1) |\n", r.DurationScale)
	w("| wall time | %s → %s |\n\n", r.StartedAt.Format("15:04:05"), r.FinishedAt.Format("15:04:05"))
	if r.Quick {
		w("**Quick run** (`--quick`): one round at a fraction of every duration, fixed-timing scenarios too. It checks that every section is produced; its figures are not verdicts.\n\n")
	}
	w("Targets: **go** is the Go router on the standard library's `net/http` server and `http.Transport`; **go-tuned** the same router on its own fast path; **pingora** the Pingora router; **nginx** (nginx-light, a plain keep-alive reverse proxy routing the same keys to the same cells) the anchor; **direct** the generator straight to the cells. ")
	w("Latency is measured from each request's scheduled send time (no coordinated omission); a run whose generator sent more than 1 %% of its requests over 1 ms late is invalid and left out of the figures. ")
	w("A capacity figure says what bound it: `router` when the proxy used its budget while the generator had CPU to spare, `generator` otherwise — a generator-bound figure is a floor, never a verdict.\n\n")
}

// quotaList is "pingora 0.20 cores, …" in target order.
func quotaList(q map[string]float64) string {
	var parts []string
	for _, t := range AllTargets {
		if c, ok := q[t]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f cores", t, c))
		}
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// cells formats one target's value of its first round for a detail row;
// "—" when the target did not run, "n/a" when it does not apply.
func cells(s *ScenarioResult, f func(*Run) string) []string {
	var out []string
	for _, t := range AllTargets {
		r := s.Run(t)
		switch {
		case s.NotApplicable(t) != "":
			out = append(out, "n/a")
		case r == nil:
			out = append(out, "—")
		case r.Error != "" && r.Summary.Requests == 0:
			out = append(out, "error")
		default:
			out = append(out, f(r))
		}
	}
	return out
}

// headlineCells formats one figure of every target's headline.
func headlineCells(s *ScenarioResult, f func(*Headline) string) []string {
	var out []string
	for _, t := range AllTargets {
		h := s.HeadlineOf(t)
		switch {
		case s.NotApplicable(t) != "":
			out = append(out, "n/a")
		case h == nil:
			out = append(out, "—")
		default:
			out = append(out, f(h))
		}
	}
	return out
}

func tableHead(first ...string) string {
	cols := append(first, AllTargets...)
	return "| " + strings.Join(cols, " | ") + " |\n|" + strings.Repeat("---|", len(cols)) + "\n"
}

// disturbedAbove is the foreign CPU load (in cores) above which a run is
// flagged as disturbed.
const disturbedAbove = 0.2

func writeSummary(w writer, r *Results) {
	w("## Verdicts\n\n")
	w("A winner is named only when the ranges over the rounds do not overlap; otherwise the line says *no clear difference*.\n\n")
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if len(s.Verdicts) == 0 {
			continue
		}
		w("**%s** — %s\n\n", s.Name, s.Question)
		for _, v := range s.Verdicts {
			text := v.Text
			if v.Winner != "" {
				text = strings.Replace(text, v.Winner, "**"+v.Winner+"**", 1)
			}
			w("- %s: %s\n", v.Question, text)
		}
		w("\n")
	}
	w("## Headline figures\n\n")
	runs, disturbed, invalid := 0, 0, 0
	for _, s := range r.Scenarios {
		for _, run := range s.Runs {
			if run.NotApplicable != "" {
				continue
			}
			runs++
			if run.OtherLoad > disturbedAbove {
				disturbed++
			}
			if run.Invalid != "" {
				invalid++
			}
		}
	}
	if disturbed > 0 {
		w("**%d of %d runs were disturbed** by other processes on the machine (more than %.1f cores of foreign CPU load while they ran). Their numbers, tail latency above all, are less reliable than the others.\n\n", disturbed, runs, disturbedAbove)
	}
	if invalid > 0 {
		w("**%d of %d runs were invalid** (the generator fell behind its schedule) and are left out of the figures below.\n\n", invalid, runs)
	}
	w("Median [min–max] over the valid rounds.\n\n")
	w(tableHead("scenario", "measure"))
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		for _, row := range headlineTable(s).Rows {
			w("| %s | %s |\n", s.Name, strings.Join(row, " | "))
		}
	}
	w("\n")
}

// hasGrowth: a run long enough for its memory trend to mean something
// (a soak).
func hasGrowth(s *ScenarioResult) bool {
	for _, r := range s.Runs {
		if r.Growth != nil && r.DurationMs >= 60000 {
			return true
		}
	}
	return false
}

func scaled(sp metrics.Spread, f float64) metrics.Spread {
	return metrics.Spread{Median: sp.Median * f, Min: sp.Min * f, Max: sp.Max * f, N: sp.N}
}

func pct(f float64) string { return fmt.Sprintf("%.3f %%", 100*f) }

func hasVersions(s *ScenarioResult) bool {
	for _, r := range firstRounds(s) {
		for _, a := range r.Actions {
			if a.Version != "" {
				return true
			}
		}
	}
	return false
}

// worstVisibility is the longest time until every client saw a new
// version, with the number of versions that were never served.
func worstVisibility(r *Run) (string, bool) {
	worst, any, never, stuck := 0.0, false, 0, 0
	for _, a := range r.Actions {
		if a.Visibility == nil {
			continue
		}
		any = true
		if a.Visibility.FirstSeenMs < 0 {
			never++
		}
		if a.Visibility.AllAfterMs < 0 {
			stuck++
			continue
		}
		worst = math.Max(worst, a.Visibility.AllAfterMs)
	}
	if !any {
		return "", false
	}
	s := fmt.Sprintf("%.0f", worst)
	if never > 0 {
		s += fmt.Sprintf(" (%d of the versions never served)", never)
	}
	if stuck > 0 {
		s += fmt.Sprintf(" (%d never reached all clients)", stuck)
	}
	return s, true
}

func writeParity(w writer, r *Results) {
	w("## Parity suite\n\n")
	if r.ParitySkipped {
		w("Skipped (`--skip-parity`).\n\n")
		return
	}
	w("`go test -json ./parity/...` against each router binary (tests and subtests counted):\n\n")
	w("| router | pass | fail | skip | documented divergences | time | failing tests |\n|---|---|---|---|---|---|---|\n")
	for _, p := range r.Parity {
		failed := strings.Join(p.Failed, ", ")
		if p.Error != "" {
			failed = strings.TrimSpace(failed + " " + "(" + p.Error + ")")
		}
		w("| %s | %d | %d | %d | %d | %.0f s | %s |\n", p.Router, p.Pass, p.Fail, p.Skip, len(p.Divergent), p.DurationS, orDash(escapePipes(failed)))
	}
	w("\n")
}

func escapePipes(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

func writeScenario(w writer, dir string, s *ScenarioResult) error {
	w("## %s\n\n", s.Name)
	w("**Question.** %s\n\n", s.Question)
	source := "file (watched)"
	if s.ControlPlane {
		source = "control plane (file is the bootstrap)"
	}
	w("Config: `%s`, config source: %s, access log: %s. Load: %s. SLO: success ≥ %s, p99 ≤ %g ms. Duration scale: %g.\n\n",
		s.Config, source, orDash(s.AccessLog), orDash(s.Load), pct(s.SLO.MinSuccess), s.SLO.MaxP99Ms, s.Scale)
	w("**Reading.** %s\n\n", reading(s))

	for _, t := range AllTargets {
		if why := s.NotApplicable(t); why != "" {
			w("- **%s**: not applicable — %s.\n", t, why)
		}
	}
	w("\n<details><summary>Every round</summary>\n\n")
	writeMDTable(w, roundsTable(s))
	w("\n</details>\n")
	if s.Capacity {
		w("\nThis table covers the whole staircase, the steps that failed included; the steps table below is the one to read.\n")
	}
	w("\n*Proxy CPU use* is the proxy's CPU time over the wall time of the measured load, per core of its budget. *Late sends* are requests the generator itself sent over 1 ms after their scheduled time (over 1 %% makes a run invalid); *waited for a connection* counts requests that found every connection busy with the target. *Other load* is CPU used on the machine by processes outside the run while it ran, in cores: above about 0.2 the numbers are disturbed. The detail sections below show round 1.\n\n")
	for _, r := range s.Runs {
		if r.Error != "" {
			w("- **%s round %d error:** %s\n", r.Target, r.Round, escapePipes(r.Error))
		}
		if r.Invalid != "" {
			w("- **%s round %d invalid:** %s\n", r.Target, r.Round, r.Invalid)
		}
	}
	writeCodes(w, s)
	writeAttackers(w, s)
	if s.Capacity {
		writeSteps(w, s)
	}
	writeActions(w, s)
	writePhases(w, s)
	return writeCharts(w, dir, s)
}

func writeCharts(w writer, dir string, s *ScenarioResult) error {
	charts, err := chartsOf(s)
	if err != nil {
		return err
	}
	for _, c := range charts {
		if err := savePNG(c.plot, dir, c.name); err != nil {
			return err
		}
		w("![%s](%s)\n\n", c.name, c.name)
	}
	return nil
}

// chartsOf draws the scenario's charts, in report order; a chart with
// nothing to show is left out.
func chartsOf(s *ScenarioResult) ([]*chart, error) {
	builders := []func(*ScenarioResult) (*chart, error){spectrumChart, latencyTimeChart, throughputTimeChart}
	if s.Capacity {
		builders = append(builders, capacityChart, capacityP50Chart, capacityP99Chart, capacityCPUChart)
	}
	if hasPhases(s) || anyFailures(s) || s.SlowHeads != nil {
		builders = append(builders, successChart)
	}
	if hasVersions(s) {
		builders = append(builders, versionTimeChart, visibilityChart)
	}
	if s.SlowHeads != nil || hasGrowth(s) {
		builders = append(builders, fdChart, rssChart)
	}
	var out []*chart
	for _, b := range builders {
		c, err := b(s)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// coresText says what --router-cores gave as a remote router's budget.
func coresText(cores float64) string {
	if cores <= 0 {
		return "budget unknown: no utilisation figures"
	}
	return fmt.Sprintf("a budget of **%g cores** by `--router-cores`, the divisor of its utilisation", cores)
}
