package report

import (
	"fmt"
	"time"
)

// Attackers describes a run whose load came from several attackers
// (`harness attack` on each host, then `harness merge`).
type Attackers struct {
	// Shares is the number of attackers: attacker i sent requests
	// i, i+Shares, … of the schedule.
	Shares int `json:"shares"`
	// Start is the shared start of the schedule, on the barrier's clock
	// (StartSource "barrier") or as given on every attacker's command line
	// ("command line", each on its own clock).
	Start       time.Time `json:"start"`
	StartSource string    `json:"start_source"`
	Each        []Share   `json:"each"`
	// ClockSkewMs is the largest difference between two attackers' clock
	// offsets against the barrier (-1: not measured); the attackers
	// started on the barrier's clock, so the skew is corrected, up to
	// AlignmentMs, the largest offset uncertainty.
	ClockSkewMs float64 `json:"clock_skew_ms"`
	AlignmentMs float64 `json:"alignment_ms"`
	// Warning says why the shares may not line up on one timeline ("" when
	// they do).
	Warning string `json:"warning,omitempty"`
}

// Share is one attacker of a merged run.
type Share struct {
	Index int    `json:"index"`
	Host  string `json:"host"`
	// Requests are the results the attacker wrote; LateFraction its
	// own late sends.
	Requests     int     `json:"requests"`
	LateFraction float64 `json:"late_fraction"`
	// ClockOffsetMs is the barrier's clock minus the attacker's (nil: not
	// measured); ClockUncertaintyMs is half the round trip it was
	// measured with.
	ClockOffsetMs      *float64 `json:"clock_offset_ms"`
	ClockUncertaintyMs float64  `json:"clock_uncertainty_ms"`
	// GeneratorCPUSeconds is the attacker process's CPU over its share.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`
}

// writeAttackers shows the attackers of merged runs and their clocks.
func writeAttackers(w writer, s *ScenarioResult) {
	for _, r := range s.Runs {
		a := r.Attackers
		if a == nil {
			continue
		}
		skew := "not measured (start from the command line)"
		if a.ClockSkewMs >= 0 {
			skew = fmt.Sprintf("%.3f ms between attackers, corrected at the start to within %.3f ms", a.ClockSkewMs, a.AlignmentMs)
		}
		w("\n**%s round %d: %d attackers**, start %s (%s); clock skew %s.\n\n", r.Target, r.Round, a.Shares,
			a.Start.UTC().Format(time.RFC3339Nano), a.StartSource, skew)
		if a.Warning != "" {
			w("**Warning:** %s\n\n", a.Warning)
		}
		w("| share | host | requests | late sends | clock offset (ms) | ± (ms) | generator CPU (s) |\n|---|---|---|---|---|---|---|\n")
		for _, sh := range a.Each {
			off := "—"
			if sh.ClockOffsetMs != nil {
				off = fmt.Sprintf("%.3f", *sh.ClockOffsetMs)
			}
			w("| %d/%d | %s | %d | %s | %s | %.3f | %.3f |\n", sh.Index, a.Shares, orDash(sh.Host), sh.Requests, pct(sh.LateFraction),
				off, sh.ClockUncertaintyMs, sh.GeneratorCPUSeconds)
		}
		w("\n")
	}
}
