package report

import (
	"fmt"
	"strings"
)

// The performance targets of the fair fight (issue 10): per core at least
// this share of nginx's capacity; at one request in flight at most this
// multiple of nginx's added p50; CPU per request at most this multiple of
// the router's own framework floor.
const (
	targetCapacityOfNginx = 0.7
	targetAddedP50OfNginx = 1.05
	targetCPUOfFloor      = 1.15
)

// targetsVerdict says, for the tuned routers, whether each target was met
// in this scenario.
func targetsVerdict(s *ScenarioResult) Verdict {
	nginx, direct := s.HeadlineOf(TargetNginx), s.HeadlineOf(TargetDirect)
	var parts []string
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, t := range []string{TargetGoTuned, TargetPingora} {
		h, f := s.HeadlineOf(t), s.HeadlineOf(floorOf[t])
		if h == nil {
			continue
		}
		if s.Capacity && nginx != nil && nginx.CapacityRPS.Median > 0 {
			r := h.CapacityRPS.Median / nginx.CapacityRPS.Median
			line := fmt.Sprintf("%s capacity %.2f× nginx (target ≥ %.2f: %s", t, r, targetCapacityOfNginx, met(r >= targetCapacityOfNginx))
			if nginx.Bound != BoundRouter {
				line += ", nginx " + nginx.Bound + "-bound: its figure is a floor, the ratio an upper bound"
			}
			parts = append(parts, line+")")
		}
		if !s.Capacity && s.SlowHeads == nil && nginx != nil && direct != nil {
			base := nginx.P50Ms.Median - direct.P50Ms.Median
			if base > 0 {
				r := (h.P50Ms.Median - direct.P50Ms.Median) / base
				parts = append(parts, fmt.Sprintf("%s added p50 %.2f× nginx's (target ≤ %.2f: %s)", t, r, targetAddedP50OfNginx, met(r <= targetAddedP50OfNginx)))
			}
		}
		if f != nil && f.RouterCPUUs.Median > 0 && h.RouterCPUUs.N > 0 {
			r := h.RouterCPUUs.Median / f.RouterCPUUs.Median
			parts = append(parts, fmt.Sprintf("%s CPU per request %.2f× %s's (target ≤ %.2f: %s)", t, r, floorOf[t], targetCPUOfFloor, met(r <= targetCPUOfFloor)))
		}
	}
	if len(parts) == 0 {
		return Verdict{}
	}
	return Verdict{Question: "performance targets (go-tuned and pingora)", Text: strings.Join(parts, "; ")}
}

// Goals of a slow-head attack (issue 11): the well-behaved client keeps at
// least this share of answers and never waits longer than this — neither
// between two answers nor for one: an answer that comes seconds after its
// request was due is an outage to the client even when the answers keep
// coming (so the p99 latency, from the due time, is bounded too).
const (
	slowHeadsMinSuccess = 0.99
	slowHeadsMaxOutage  = 2000.0 // ms
)

// slowHeadsVerdict says, per target, whether the well-behaved client kept
// being served during the attack.
func slowHeadsVerdict(s *ScenarioResult) Verdict {
	var parts []string
	for _, t := range AllTargets {
		h := s.HeadlineOf(t)
		if h == nil {
			continue
		}
		ok := h.SuccessRate.Min >= slowHeadsMinSuccess && h.LongestOutageMs.Max <= slowHeadsMaxOutage && h.P99Ms.Max <= slowHeadsMaxOutage
		mark := "meets the goal"
		switch {
		case !ok:
			mark = "MISSES the goal"
		case h.P99Ms.N == 0:
			// Latency figures come only from runs whose generator kept
			// its schedule.
			mark = "no verdict (the generator fell behind)"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%.2f %% answered, p99 %.0f ms, longest outage %.0f ms, peak %.0f descriptors)", t, mark,
			100*h.SuccessRate.Min, h.P99Ms.Max, h.LongestOutageMs.Max, h.PeakFDs.Max))
	}
	return Verdict{Question: fmt.Sprintf("slow heads beyond the descriptor limit (goal: >= %.0f %% answered within %.0f s, no outage over %.0f s)", 100*slowHeadsMinSuccess, slowHeadsMaxOutage/1000, slowHeadsMaxOutage/1000),
		Text: strings.Join(parts, "; ")}
}

// floorOf is each router's framework floor.
var floorOf = map[string]string{TargetGo: TargetGoFloor, TargetGoTuned: TargetGoFloor, TargetPingora: TargetPingoraFloor}

// floorVerdict splits each router's CPU per request into its framework
// floor's and its own (medians of the same run).
func floorVerdict(s *ScenarioResult) Verdict {
	var parts []string
	for _, t := range Routers {
		h, f := s.HeadlineOf(t), s.HeadlineOf(floorOf[t])
		if h == nil || f == nil || h.RouterCPUUs.N == 0 || f.RouterCPUUs.N == 0 || f.RouterCPUUs.Median <= 0 {
			continue
		}
		own := h.RouterCPUUs.Median - f.RouterCPUUs.Median
		parts = append(parts, fmt.Sprintf("%s %.1f µs = %s %.1f + its own %.1f (%.2f× its floor)", t, h.RouterCPUUs.Median,
			floorOf[t], f.RouterCPUUs.Median, own, h.RouterCPUUs.Median/f.RouterCPUUs.Median))
	}
	if len(parts) == 0 {
		return Verdict{}
	}
	return Verdict{Question: "CPU per request, framework floor and router's own", Text: strings.Join(parts, "; ")}
}

// addedLatencyVerdict: each proxy's p50 minus direct's, as a ratio of
// nginx's (what the proxy adds, against what the anchor adds).
func addedLatencyVerdict(s *ScenarioResult) Verdict {
	nginx, direct := s.HeadlineOf(TargetNginx), s.HeadlineOf(TargetDirect)
	if nginx == nil || direct == nil {
		return Verdict{}
	}
	base := nginx.P50Ms.Median - direct.P50Ms.Median
	if base <= 0 {
		return Verdict{}
	}
	var parts []string
	for _, t := range Routers {
		if h := s.HeadlineOf(t); h != nil {
			added := h.P50Ms.Median - direct.P50Ms.Median
			parts = append(parts, fmt.Sprintf("%s adds %.3f ms (%.2f× nginx's %.3f ms)", t, added, added/base, base))
		}
	}
	return Verdict{Question: "added p50 over direct, against nginx", Text: strings.Join(parts, "; ")}
}
