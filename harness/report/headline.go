package report

import (
	"fmt"
	"sort"
	"strings"

	"cellbench/harness/metrics"
)

// Headline is one target's figures in a scenario over its valid rounds:
// the median with the smallest and largest round. For a capacity scenario
// the latency figures are those of its first step (the fixed low rate).
type Headline struct {
	Target        string `json:"target"`
	NotApplicable string `json:"not_applicable,omitempty"`
	// Rounds is how many rounds ran, Valid how many count (the generator
	// kept its schedule, the run completed).
	Rounds int `json:"rounds"`
	Valid  int `json:"valid_rounds"`

	P50Ms       metrics.Spread `json:"p50_ms"`
	P99Ms       metrics.Spread `json:"p99_ms"`
	SuccessRate metrics.Spread `json:"success_rate"`
	// RouterCPUUs is the proxy's CPU per request; GeneratorCPUUs the
	// load generator's own (the harness process), CellsCPUUs the cells'.
	RouterCPUUs    metrics.Spread `json:"router_cpu_us_per_request"`
	GeneratorCPUUs metrics.Spread `json:"generator_cpu_us_per_request"`
	CellsCPUUs     metrics.Spread `json:"cells_cpu_us_per_request"`
	// LatencyRate is the offered rate of the latency figures.
	LatencyRate float64 `json:"latency_at_rps,omitempty"`
	// Capacity: the highest sustained rate, per core of the budget, and
	// what bound it (the same in every round, or "mixed").
	CapacityRPS     metrics.Spread `json:"capacity_rps"`
	CapacityPerCore metrics.Spread `json:"capacity_rps_per_core"`
	Bound           string         `json:"bound,omitempty"`
	// LongestOutageMs is the longest stretch without a 2xx answer;
	// PeakFDs the proxy's most open descriptors; RSSGrowth its resident
	// memory's growth per minute after the warm-up, in percent.
	LongestOutageMs metrics.Spread `json:"longest_outage_ms"`
	PeakFDs         metrics.Spread `json:"peak_fds"`
	RSSGrowth       metrics.Spread `json:"rss_growth_percent_per_min"`
}

// Verdict answers one question of a scenario from the headline figures.
// Winner is empty when the rounds' ranges overlap or a figure cannot be
// used (generator-bound, invalid): then Text says "no clear difference" or
// why there is no verdict.
type Verdict struct {
	Question string `json:"question"`
	Winner   string `json:"winner,omitempty"`
	Text     string `json:"text"`
	// Figure (a Headline field's JSON name) and Sides are set for the
	// verdicts that compare two targets on one figure.
	Figure string   `json:"figure,omitempty"`
	Sides  []string `json:"sides,omitempty"`
}

// Aggregate computes the scenario's headline and verdicts from its runs.
func Aggregate(s *ScenarioResult, budget Budget) {
	s.Headline = nil
	for _, t := range AllTargets {
		h := Headline{Target: t, NotApplicable: s.NotApplicable(t)}
		rounds := s.Rounds(t)
		if h.NotApplicable == "" && len(rounds) == 0 {
			continue
		}
		h.Rounds = len(rounds)
		var p50, p99, succ, rcpu, gcpu, ccpu, capRPS, perCore, outage, fds, rss []float64
		bounds := map[string]int{}
		for _, r := range rounds {
			if !usable(r) {
				continue
			}
			h.Valid++
			sum, router, gen, cells := r.Summary, r.Router, r.Generator, r.Cells
			if s.Capacity && len(r.Steps) > 0 {
				first := r.Steps[0]
				sum, router, gen, cells = first.Summary, first.Router, first.Generator, first.Cells
				h.LatencyRate = float64(first.Rate)
				capRPS = append(capRPS, float64(r.MaxSustainedRPS))
				if cores := budget.CoresOf(t); cores > 0 {
					perCore = append(perCore, float64(r.MaxSustainedRPS)/cores)
				}
				bounds[r.Bound]++
			} else {
				h.LatencyRate = sum.OfferedRate
				outage = append(outage, r.LongestOutageMs)
			}
			if len(r.Samples) > 0 {
				peak := 0
				for _, sm := range r.Samples {
					peak = max(peak, sm.FDs)
				}
				fds = append(fds, float64(peak))
			}
			if r.Growth != nil {
				rss = append(rss, r.Growth.RSSPercentPerMin)
			}
			p50 = append(p50, sum.Latency.P50)
			p99 = append(p99, sum.Latency.P99)
			succ = append(succ, sum.SuccessRate)
			if router != nil {
				rcpu = append(rcpu, router.CPUPerRequestUs())
			}
			if gen != nil {
				gcpu = append(gcpu, gen.CPUPerRequestUs())
			}
			if cells != nil {
				ccpu = append(ccpu, cells.CPUPerRequestUs())
			}
		}
		h.P50Ms, h.P99Ms, h.SuccessRate = metrics.SpreadOf(p50), metrics.SpreadOf(p99), metrics.SpreadOf(succ)
		h.RouterCPUUs, h.GeneratorCPUUs, h.CellsCPUUs = metrics.SpreadOf(rcpu), metrics.SpreadOf(gcpu), metrics.SpreadOf(ccpu)
		h.CapacityRPS, h.CapacityPerCore = metrics.SpreadOf(capRPS), metrics.SpreadOf(perCore)
		h.Bound = oneBound(bounds)
		h.LongestOutageMs, h.PeakFDs, h.RSSGrowth = metrics.SpreadOf(outage), metrics.SpreadOf(fds), metrics.SpreadOf(rss)
		s.Headline = append(s.Headline, h)
	}
	s.Verdicts = verdicts(s)
}

// usable: the run completed and its generator kept the schedule.
func usable(r *Run) bool { return r.Error == "" && r.Invalid == "" && r.Summary.Requests > 0 }

func oneBound(bounds map[string]int) string {
	if len(bounds) == 0 {
		return ""
	}
	if len(bounds) == 1 {
		for b := range bounds {
			return b
		}
	}
	var parts []string
	for b, n := range bounds {
		parts = append(parts, fmt.Sprintf("%s ×%d", b, n))
	}
	sort.Strings(parts)
	return "mixed (" + strings.Join(parts, ", ") + ")"
}

// HeadlineOf returns target's headline, or nil.
func (s *ScenarioResult) HeadlineOf(target string) *Headline {
	for i := range s.Headline {
		if s.Headline[i].Target == target && s.Headline[i].NotApplicable == "" && s.Headline[i].Valid > 0 {
			return &s.Headline[i]
		}
	}
	return nil
}

// rivals are the pairs each verdict compares: the question is Pingora
// against Go's standard library, and against the tuned Go router.
var rivals = [][2]string{{TargetGo, TargetPingora}, {TargetGoTuned, TargetPingora}, {TargetGo, TargetGoTuned}}

func verdicts(s *ScenarioResult) []Verdict {
	if s.SlowHeads != nil {
		// Under an attack the question is whether the client is served;
		// latency and CPU per request there measure the attack.
		return compact([]Verdict{slowHeadsVerdict(s)})
	}
	var out []Verdict
	if s.Capacity {
		for _, pair := range rivals {
			out = append(out, capacityVerdict(s, pair[0], pair[1]))
		}
		out = append(out, anchorVerdict(s, "capacity per core against nginx and direct", func(h *Headline) metrics.Spread { return h.CapacityRPS }, true))
	} else {
		for _, pair := range rivals {
			out = append(out, lowerVerdict(s, "p50", pair[0], pair[1], func(h *Headline) metrics.Spread { return h.P50Ms }, "ms"))
			out = append(out, lowerVerdict(s, "p99", pair[0], pair[1], func(h *Headline) metrics.Spread { return h.P99Ms }, "ms"))
		}
		out = append(out, addedLatencyVerdict(s))
	}
	for _, pair := range rivals[:2] {
		out = append(out, lowerVerdict(s, "CPU per request", pair[0], pair[1], func(h *Headline) metrics.Spread { return h.RouterCPUUs }, "µs"))
	}
	out = append(out, floorVerdict(s))
	out = append(out, targetsVerdict(s))
	return compact(out)
}

func compact(vs []Verdict) []Verdict {
	var out []Verdict
	for _, v := range vs {
		if v.Text != "" {
			out = append(out, v)
		}
	}
	return out
}

// FormatSpread is "median [min–max]".
func FormatSpread(sp metrics.Spread, digits int) string {
	if sp.N == 0 {
		return "–"
	}
	if sp.N == 1 || sp.Min == sp.Max {
		return fmt.Sprintf("%.*f", digits, sp.Median)
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", digits, sp.Median, digits, sp.Min, digits, sp.Max)
}

func digitsFor(unit string) int {
	if unit == "ms" {
		return 3
	}
	return 1
}

// lowerVerdict: the target with the lower figure wins when the ranges do
// not overlap.
func lowerVerdict(s *ScenarioResult, figure, a, b string, get func(*Headline) metrics.Spread, unit string) Verdict {
	v := Verdict{Question: fmt.Sprintf("%s, %s vs %s", figure, a, b), Figure: figureKeys[figure], Sides: []string{a, b}}
	ha, hb := s.HeadlineOf(a), s.HeadlineOf(b)
	if ha == nil || hb == nil {
		return Verdict{}
	}
	sa, sb := get(ha), get(hb)
	if sa.N == 0 || sb.N == 0 {
		return Verdict{}
	}
	d := digitsFor(unit)
	figures := fmt.Sprintf("%s %s vs %s %s %s over %d/%d rounds", a, FormatSpread(sa, d), b, FormatSpread(sb, d), unit, sa.N, sb.N)
	switch Separate(sa, sb) {
	case TooFewRounds:
		return v.with("", fmt.Sprintf("no verdict from fewer than %d valid rounds (%s)", minRounds, figures))
	case Overlapping:
		return v.with("", "no clear difference ("+figures+")")
	}
	win, ws, ls := a, sa, sb
	if sb.Median < sa.Median {
		win, ws, ls = b, sb, sa
	}
	return v.with(win, fmt.Sprintf("%s lower by %.2f× (%s)", win, ls.Median/ws.Median, figures))
}

// capacityVerdict ranks two routers by capacity when both are router-bound
// in every valid round and the ranges do not overlap.
func capacityVerdict(s *ScenarioResult, a, b string) Verdict {
	v := Verdict{Question: fmt.Sprintf("capacity, %s vs %s", a, b), Figure: figureKeys["capacity"], Sides: []string{a, b}}
	ha, hb := s.HeadlineOf(a), s.HeadlineOf(b)
	if ha == nil || hb == nil {
		return Verdict{}
	}
	figures := fmt.Sprintf("%s %s vs %s %s req/s over %d/%d rounds", a, FormatSpread(ha.CapacityRPS, 0), b, FormatSpread(hb.CapacityRPS, 0), ha.CapacityRPS.N, hb.CapacityRPS.N)
	for _, h := range []*Headline{ha, hb} {
		if h.Bound != BoundRouter {
			return v.with("", fmt.Sprintf("no verdict: %s was bound by %q, not by the router (%s)", h.Target, h.Bound, figures))
		}
	}
	switch Separate(ha.CapacityRPS, hb.CapacityRPS) {
	case TooFewRounds:
		return v.with("", fmt.Sprintf("no verdict from fewer than %d valid rounds (%s)", minRounds, figures))
	case Overlapping:
		return v.with("", "no clear difference ("+figures+")")
	}
	win, ws, ls := a, ha.CapacityRPS, hb.CapacityRPS
	if hb.CapacityRPS.Median > ha.CapacityRPS.Median {
		win, ws, ls = b, hb.CapacityRPS, ha.CapacityRPS
	}
	return v.with(win, fmt.Sprintf("%s higher by %.2f× (%s)", win, ws.Median/ls.Median, figures))
}

// anchorVerdict states each router's figure as a ratio of nginx's and of
// direct's medians (same run, same budget).
func anchorVerdict(s *ScenarioResult, question string, get func(*Headline) metrics.Spread, capacity bool) Verdict {
	nginx, direct := s.HeadlineOf(TargetNginx), s.HeadlineOf(TargetDirect)
	var parts []string
	for _, t := range Routers {
		h := s.HeadlineOf(t)
		if h == nil || get(h).N == 0 {
			continue
		}
		line := t
		if nginx != nil && get(nginx).Median > 0 {
			line += fmt.Sprintf(" %.2f× nginx", get(h).Median/get(nginx).Median)
		}
		if direct != nil && get(direct).Median > 0 {
			line += fmt.Sprintf(", %.2f× direct", get(h).Median/get(direct).Median)
		}
		if capacity && h.Bound != BoundRouter {
			line += " (" + h.Bound + "-bound: a floor)"
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return Verdict{}
	}
	text := strings.Join(parts, "; ")
	if capacity && nginx != nil && nginx.Bound != BoundRouter {
		text += fmt.Sprintf("; nginx itself was %s-bound, so ratios to it are upper bounds", nginx.Bound)
	}
	if capacity && direct != nil {
		best := 0.0
		for _, t := range Routers {
			if h := s.HeadlineOf(t); h != nil {
				best = max(best, h.CapacityRPS.Median)
			}
		}
		if best > 0 {
			text += fmt.Sprintf("; direct is %.2f× the best router (the design needs ≥ 1.5× for router-bound figures)", direct.CapacityRPS.Median/best)
		}
	}
	return Verdict{Question: question, Text: text}
}
