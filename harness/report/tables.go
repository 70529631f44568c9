package report

import (
	"fmt"
	"strings"
)

// table is one report table as text cells, rendered by report.md and
// report.html alike. A cell may hold **bold** markdown, which the HTML
// renderer turns into <strong>.
type table struct {
	Head []string
	Rows [][]string
}

func (t *table) add(cells ...string) { t.Rows = append(t.Rows, cells) }

// writeMDTable writes t as a markdown table.
func writeMDTable(w writer, t table) {
	w("| %s |\n|%s\n", strings.Join(t.Head, " | "), strings.Repeat("---|", len(t.Head)))
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = escapePipes(c)
		}
		w("| %s |\n", strings.Join(cells, " | "))
	}
}

// roundsTable is every round of every target.
func roundsTable(s *ScenarioResult) table {
	t := table{Head: []string{"target", "round", "requests", "success", "no answer", "2xx/s", "p50", "p90", "p99", "p99.9", "max (ms)",
		"late sends", "waited for a connection", "misrouted", "proxy CPU µs/req", "proxy CPU use", "generator µs/req", "max RSS", "other load"}}
	for _, r := range s.Runs {
		if r.NotApplicable != "" {
			continue
		}
		l := r.Summary.Latency
		cpu, util, rss, gen := "—", "—", "—", "—"
		if r.Router != nil {
			cpu = fmt.Sprintf("%.1f", r.Router.CPUPerRequestUs())
			util = fmt.Sprintf("%.0f %%", 100*r.Router.Utilization)
			rss = fmt.Sprintf("%.0f MiB", r.Router.MaxRSSMiB)
		}
		if r.Generator != nil {
			gen = fmt.Sprintf("%.1f", r.Generator.CPUPerRequestUs())
		}
		if s.Capacity {
			cpu, util, gen = "see steps", "see steps", "see steps"
		}
		late := pct(r.Summary.LateFraction)
		if r.Invalid != "" {
			late += " **invalid**"
		}
		t.add(r.Target, fmt.Sprint(r.Round), fmt.Sprint(r.Summary.Requests), pct(r.Summary.SuccessRate), fmt.Sprint(r.Summary.Errors),
			fmt.Sprintf("%.0f", r.Summary.Throughput), fmt.Sprintf("%.3f", l.P50), fmt.Sprintf("%.3f", l.P90), fmt.Sprintf("%.3f", l.P99),
			fmt.Sprintf("%.3f", l.P999), fmt.Sprintf("%.1f", l.Max), late, fmt.Sprint(r.Summary.WaitedForConnection), fmt.Sprint(r.Misrouted),
			cpu, util, gen, rss, fmt.Sprintf("%.2f cores", r.OtherLoad))
	}
	return t
}

// probesTable is each capacity round's probe, capacity and bound.
func probesTable(s *ScenarioResult) table {
	t := table{Head: []string{"target", "round", "probe (req/s)", "max sustained (req/s)", "bound", "why"}}
	for _, r := range s.Runs {
		if r.NotApplicable == "" {
			t.add(r.Target, fmt.Sprint(r.Round), fmt.Sprintf("%.0f", r.ProbeRPS), fmt.Sprint(r.MaxSustainedRPS), orDash(r.Bound), r.BoundWhy)
		}
	}
	return t
}

// stepsTable is every step of every capacity round.
func stepsTable(s *ScenarioResult) table {
	t := table{Head: []string{"target", "round", "offered (req/s)", "sent", "2xx/s", "success", "p50", "p99", "max (ms)", "late sends",
		"proxy CPU µs/req", "proxy CPU use", "throttled (ms)", "generator µs/req", "cells µs/req", "generator side busy", "other load", "sustained"}}
	for _, r := range s.Runs {
		for _, st := range r.Steps {
			cpu, util, thr := "—", "—", "—"
			if st.Router != nil {
				cpu = fmt.Sprintf("%.1f", st.Router.CPUPerRequestUs())
				util = fmt.Sprintf("%.0f %%", 100*st.Router.Utilization)
				thr = fmt.Sprintf("%.0f", st.Router.ThrottledMs)
			}
			gen, cel := "—", "—"
			if st.Generator != nil {
				gen = fmt.Sprintf("%.1f", st.Generator.CPUPerRequestUs())
			}
			if st.Cells != nil {
				cel = fmt.Sprintf("%.1f", st.Cells.CPUPerRequestUs())
			}
			ok := "yes"
			if !st.Sustained {
				ok = "no: " + st.Why
			}
			rate := fmt.Sprint(st.Rate)
			if st.Retry {
				rate += " (repeat)"
			}
			l := st.Summary.Latency
			t.add(r.Target, fmt.Sprint(r.Round), rate, fmt.Sprint(st.Summary.Requests), fmt.Sprintf("%.0f", st.Summary.Throughput),
				pct(st.Summary.SuccessRate), fmt.Sprintf("%.3f", l.P50), fmt.Sprintf("%.3f", l.P99), fmt.Sprintf("%.1f", l.Max),
				pct(st.Summary.LateFraction), cpu, util, thr, gen, cel, fmt.Sprintf("%.0f %%", 100*st.GeneratorSideBusy),
				fmt.Sprintf("%.2f", st.OtherLoad), ok)
		}
	}
	return t
}

// actionsTable is every timeline action of round 1 and what it caused.
func actionsTable(s *ScenarioResult) table {
	t := table{Head: []string{"target", "at (ms)", "action", "outcome"}}
	for _, r := range firstRounds(s) {
		for _, a := range r.Actions {
			t.add(r.Target, fmt.Sprintf("%.0f", a.AtMs), a.Kind+" "+a.Detail, outcome(a))
		}
	}
	return t
}

// phasesTable is every phase of round 1 between chaos actions.
func phasesTable(s *ScenarioResult) table {
	t := table{Head: []string{"target", "phase", "from–to (s)", "requests", "success", "no answer", "failovers", "p99 (ms)"}}
	for _, r := range firstRounds(s) {
		for _, p := range r.Phases {
			t.add(r.Target, p.Name, fmt.Sprintf("%.1f–%.1f", p.FromMs/1000, p.ToMs/1000), fmt.Sprint(p.Requests), pct(p.SuccessRate),
				fmt.Sprint(p.Errors), fmt.Sprint(p.Failovers), fmt.Sprintf("%.2f", p.P99))
		}
	}
	return t
}

// headlineTable is the scenario's headline figures, one row per measure
// and one column per target.
func headlineTable(s *ScenarioResult) table {
	t := table{Head: append([]string{"measure"}, AllTargets...)}
	row := func(measure string, f func(*Headline) string) {
		t.Rows = append(t.Rows, append([]string{measure}, headlineCells(s, f)...))
	}
	if s.Capacity {
		row("max sustained rate (req/s)", func(h *Headline) string { return FormatSpread(h.CapacityRPS, 0) })
		row("per core of the budget (req/s)", func(h *Headline) string { return FormatSpread(h.CapacityPerCore, 0) })
		row("bound", func(h *Headline) string { return orDash(h.Bound) })
	} else {
		row("success", func(h *Headline) string { return FormatSpread(scaled(h.SuccessRate, 100), 3) + " %" })
	}
	at := ""
	if s.Capacity {
		at = " at the first step"
	}
	row("p50 (ms)"+at, func(h *Headline) string { return FormatSpread(h.P50Ms, 3) })
	row("p99 (ms)"+at, func(h *Headline) string { return FormatSpread(h.P99Ms, 3) })
	row("proxy CPU µs/request"+at, func(h *Headline) string { return FormatSpread(h.RouterCPUUs, 1) })
	row("generator CPU µs/request"+at, func(h *Headline) string { return FormatSpread(h.GeneratorCPUUs, 1) })
	if !s.Capacity {
		row("longest outage (ms)", func(h *Headline) string { return FormatSpread(h.LongestOutageMs, 0) })
	}
	if s.SlowHeads != nil {
		row("peak open descriptors", func(h *Headline) string { return FormatSpread(h.PeakFDs, 0) })
	}
	if hasGrowth(s) {
		row("RSS growth after warm-up (% per min)", func(h *Headline) string { return FormatSpread(h.RSSGrowth, 2) })
	}
	row("valid rounds", func(h *Headline) string { return fmt.Sprintf("%d/%d", h.Valid, h.Rounds) })
	if hasVersions(s) {
		t.Rows = append(t.Rows, append([]string{"config change visible to all clients after (max, ms, round 1)"}, cells(s, func(r *Run) string {
			if v, ok := worstVisibility(r); ok {
				return v
			}
			return "—"
		})...))
	}
	return t
}
