package report

import (
	"fmt"
	"sort"
	"strings"
)

// writeCodes shows statuses, transport errors and who served, per target.
func writeCodes(w writer, s *ScenarioResult) {
	w("| target | statuses | served by (placement or cell) | failover reasons | top transport errors |\n|---|---|---|---|---|\n")
	for _, r := range firstRounds(s) {
		var errs []string
		for _, e := range r.Summary.TopErrors {
			errs = append(errs, fmt.Sprintf("%d× %s", e.Count, e.Name))
		}
		w("| %s | %s | %s | %s | %s |\n", r.Target, counts(r.Summary.Codes), counts(r.Summary.Served),
			counts(r.Summary.Failover), orDash(escapePipes(strings.Join(errs, "; "))))
	}
	w("\n")
	var keys []string
	var shares map[string]float64
	if rounds := firstRounds(s); len(rounds) > 0 {
		for k, p := range rounds[0].Expected {
			keys = append(keys, fmt.Sprintf("`%s`→%s", k, p))
		}
		shares = rounds[0].ExpectedShare
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return
	}
	w("Routing keys and the placement the config routes them to: %s. *Misrouted* counts 2xx answers without failover from any other placement.\n\n", strings.Join(keys, ", "))
	if len(shares) == 0 {
		return
	}
	places := make([]string, 0, len(shares))
	for p := range shares {
		places = append(places, p)
	}
	sort.Strings(places)
	w("Share of answers per placement (expected from the target weights and the routes, before any failover):\n\n| placement | expected |")
	for _, r := range firstRounds(s) {
		w(" %s |", r.Target)
	}
	w("\n|---|---|")
	for range firstRounds(s) {
		w("---|")
	}
	w("\n")
	for _, p := range places {
		w("| %s | %.1f %% |", p, 100*shares[p])
		for _, r := range firstRounds(s) {
			n := 0
			for _, c := range r.Summary.Served {
				n += c
			}
			if n == 0 {
				w(" — |")
				continue
			}
			w(" %.1f %% |", 100*float64(r.Summary.Served[p])/float64(n))
		}
		w("\n")
	}
	w("\n")
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "—"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func writeSteps(w writer, s *ScenarioResult) {
	w("Capacity per round: the closed-loop probe that placed the steps, the highest sustained step, and what bound the staircase.\n\n")
	writeMDTable(w, probesTable(s))
	w("\n<details><summary>Every step of every round</summary>\n\n")
	w("Each step is a fresh open-loop constant-rate attack; a step that is not sustained is repeated once, and the staircase stops when the repeat is not sustained either.\n\n")
	writeMDTable(w, stepsTable(s))
	w("\n</details>\n\n")
}

func writeActions(w writer, s *ScenarioResult) {
	if !s.HasTimeline {
		return
	}
	w("Timeline (offsets from the start of the measured load; for a new version: time until the first response carried it, time after which no response carried another, and responses that still carried an older one after the first new one):\n\n")
	for _, r := range firstRounds(s) {
		if r.Summary.OfferedRate > 0 {
			w("Times are measured on request send times, so their resolution is one request interval: %.1f ms at this rate.\n\n", 1000/r.Summary.OfferedRate)
			break
		}
	}
	writeMDTable(w, actionsTable(s))
	w("\n")
}

func outcome(a Action) string {
	switch {
	case a.Error != "":
		return "action failed: " + a.Error
	case a.Invalid:
		return fmt.Sprintf("responses carrying the rejected version: %d", a.SeenInvalid)
	case a.Visibility != nil:
		v := a.Visibility
		switch {
		case v.FirstSeenMs < 0 && v.AllAfterMs < 0:
			return "never served, and older versions were still served at the end"
		case v.FirstSeenMs < 0:
			return fmt.Sprintf("never served (a newer version replaced it); all clients past it +%.0f ms", v.AllAfterMs)
		case v.AllAfterMs < 0:
			return fmt.Sprintf("first seen +%.0f ms, but older versions were still served at the end (stale: %d)", v.FirstSeenMs, v.Stale)
		}
		out := fmt.Sprintf("first seen +%.0f ms, all clients +%.0f ms, stale after first: %d", v.FirstSeenMs, v.AllAfterMs, v.Stale)
		if a.WindowP99Ms != nil {
			out += fmt.Sprintf("; p99 in the next 500 ms %.2f ms", *a.WindowP99Ms)
		}
		return out
	case a.FirstFailoverMs != nil:
		return fmt.Sprintf("first failover %s, first non-2xx %s", since(*a.FirstFailoverMs), since(*a.FirstErrorMs))
	case a.FailedUntilNext != nil:
		return fmt.Sprintf("non-2xx answers until the next action: %d", *a.FailedUntilNext)
	case a.BackMs != nil:
		return "served again without failover " + since(*a.BackMs)
	}
	return "done"
}

func since(ms float64) string {
	if ms < 0 {
		return "never (in this phase)"
	}
	return fmt.Sprintf("+%.0f ms", ms)
}

func writePhases(w writer, s *ScenarioResult) {
	any := false
	for _, r := range firstRounds(s) {
		any = any || len(r.Phases) > 0
	}
	if !any {
		return
	}
	w("Phases (between chaos actions):\n\n")
	writeMDTable(w, phasesTable(s))
	w("\n")
}

func hasPhases(s *ScenarioResult) bool {
	for _, r := range firstRounds(s) {
		if len(r.Phases) > 0 {
			return true
		}
	}
	return false
}

func anyFailures(s *ScenarioResult) bool {
	for _, r := range firstRounds(s) {
		if r.Summary.Requests > r.Summary.Successes {
			return true
		}
	}
	return false
}
