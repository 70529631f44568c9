package report

import (
	"fmt"
	"math"
	"strings"
)

// reading is the one-line interpretation of a scenario, computed from its
// numbers: which router did better on the scenario's own measure, whether
// the SLO held, and whether the direct baseline says the generator or the
// cells were the limit.
func reading(s *ScenarioResult) string {
	g, p, d := s.Run(TargetGo), s.Run(TargetPingora), s.Run(TargetDirect)
	var out []string
	for _, r := range []*Run{g, p, d} {
		if r != nil && r.Error != "" {
			out = append(out, fmt.Sprintf("The %s run did not complete (%s), so its numbers are partial.", r.Target, firstLine(r.Error)))
		}
	}
	switch {
	case s.Capacity:
		out = append(out, capacityReading(s)...)
	case hasPhases(s):
		out = append(out, failureReading(g, p, d)...)
	default:
		out = append(out, latencyReading(s, g, p, d)...)
		if hasVersions(s) {
			out = append(out, versionReading(g, p)...)
		}
	}
	for _, r := range []*Run{g, p, d} {
		if r != nil && r.OtherLoad > disturbedAbove {
			out = append(out, fmt.Sprintf("Other processes used %.2f cores during the %s run: its numbers are disturbed.", r.OtherLoad, r.Target))
		}
	}
	if len(out) == 0 {
		return "No run produced numbers."
	}
	return strings.Join(out, " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 160 {
		line = line[:160] + "…"
	}
	return line
}

func ok(r *Run) bool { return r != nil && r.Summary.Latency.Count > 0 }

func meets(r *Run, s *ScenarioResult) bool { return len(sloMisses(r, s)) == 0 }

func sloMisses(r *Run, s *ScenarioResult) []string {
	return s.SLO.Misses(r.Summary.SuccessRate, r.Summary.Latency.P99)
}

func latencyReading(s *ScenarioResult, g, p, d *Run) []string {
	// Which target is faster is the Verdicts' to say, over the rounds;
	// this reading describes round 1 only.
	var out []string
	if ok(d) {
		out = append(out, fmt.Sprintf("Direct (no router) p50 %.2f ms, p99 %.2f ms: the rest is what the router adds.", d.Summary.Latency.P50, d.Summary.Latency.P99))
		if !meets(d, s) {
			out = append(out, "The direct baseline itself misses the SLO: the generator or the cells are the limit at this rate, and the routers' figures are bounded by it.")
		}
	}
	var slo []string
	for _, r := range []*Run{g, p} {
		if ok(r) {
			slo = append(slo, sloVerdict(r, s))
		}
	}
	if len(slo) > 0 {
		out = append(out, strings.Join(slo, "; ")+".")
	}
	for _, r := range []*Run{g, p} {
		if r != nil && r.Misrouted > 0 {
			out = append(out, fmt.Sprintf("%s misrouted %d answers.", r.Target, r.Misrouted))
		}
	}
	return out
}

func versionReading(g, p *Run) []string {
	var out []string
	for _, r := range []*Run{g, p} {
		if r == nil {
			continue
		}
		worst, _ := worstVisibility(r)
		stale, invalid, failed := 0, 0, 0
		worstWindow := 0.0
		for _, a := range r.Actions {
			if a.WindowP99Ms != nil {
				worstWindow = math.Max(worstWindow, *a.WindowP99Ms)
			}
			if a.Visibility != nil {
				stale += a.Visibility.Stale
			}
			invalid += a.SeenInvalid
			if a.Error != "" {
				failed++
			}
		}
		line := fmt.Sprintf("%s: every change reached all clients within %s ms, %d stale answers after a switch, %d answers with a rejected version, %d non-2xx",
			r.Target, worst, stale, invalid, r.Summary.Requests-r.Summary.Successes)
		if failed > 0 {
			line += fmt.Sprintf(", %d actions failed", failed)
		}
		if worstWindow > 0 {
			line += fmt.Sprintf("; worst p99 in the 500 ms after a change %.2f ms against %.2f ms over the whole run", worstWindow, r.Summary.Latency.P99)
		}
		out = append(out, line+".")
	}
	return out
}

func failureReading(g, p, d *Run) []string {
	var out []string
	for _, r := range []*Run{g, p, d} {
		if r == nil {
			continue
		}
		bad := r.Summary.Requests - r.Summary.Successes
		line := fmt.Sprintf("%s: %d non-2xx of %d (%s success)", r.Target, bad, r.Summary.Requests, pct(r.Summary.SuccessRate))
		if r.Target != TargetDirect {
			var firsts []string
			for _, a := range r.Actions {
				if a.FirstFailoverMs != nil {
					firsts = append(firsts, fmt.Sprintf("%s %s", a.Detail, since(*a.FirstFailoverMs)))
				}
			}
			if len(firsts) > 0 {
				line += "; first failover after " + strings.Join(firsts, ", ")
			}
		}
		out = append(out, line+".")
	}
	if d != nil {
		out = append(out, "Direct shows what clients would see with no router in front of the failing cell.")
	}
	return out
}

func capacityReading(s *ScenarioResult) []string {
	var out []string
	for _, t := range AllTargets {
		if r := s.Run(t); r != nil && r.Bound != "" {
			out = append(out, fmt.Sprintf("%s (round 1) sustained %d req/s, bound by %s: %s.", t, r.MaxSustainedRPS, r.Bound, r.BoundWhy))
		}
	}
	return out
}

// sloVerdict says whether a run met the scenario's SLO and, if not, which
// half of it failed.
func sloVerdict(r *Run, s *ScenarioResult) string {
	why := sloMisses(r, s)
	if len(why) == 0 {
		return fmt.Sprintf("%s meets the SLO", r.Target)
	}
	return fmt.Sprintf("%s misses the SLO (%s)", r.Target, strings.Join(why, ", "))
}
