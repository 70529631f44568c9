package report

import "cellbench/harness/metrics"

// minRounds is the fewest valid rounds of each side a winner needs: one
// round has no spread to compare.
const minRounds = 2

// Separation is what the rounds of two figures say about their difference.
type Separation int

const (
	// TooFewRounds: a side has fewer than minRounds valid rounds.
	TooFewRounds Separation = iota
	// Overlapping: the min–max ranges share a value; the difference is
	// within the noise of the rounds.
	Overlapping
	// Separated: the ranges do not meet; the difference is beyond noise.
	Separated
)

// Separate is the one rule of the harness for "beyond noise": both sides
// have at least minRounds valid rounds and their min–max ranges over the
// rounds do not overlap. Verdicts and `harness diff` both use it.
func Separate(a, b metrics.Spread) Separation {
	switch {
	case a.N < minRounds || b.N < minRounds:
		return TooFewRounds
	case a.Overlaps(b):
		return Overlapping
	}
	return Separated
}

// Figure is one headline figure that verdicts and diffs compare.
type Figure struct {
	// Key is the Headline field's JSON name.
	Key, Label, Unit string
	Digits           int
	// HigherIsBetter: capacity; every other figure is better lower.
	HigherIsBetter bool
	// Capacity figures count only when bound by the router.
	Capacity bool
	Get      func(*Headline) metrics.Spread
}

// Figures are the compared headline figures, in report order.
var Figures = []Figure{
	{Key: "capacity_rps", Label: "capacity", Unit: "req/s", Digits: 0, HigherIsBetter: true, Capacity: true, Get: func(h *Headline) metrics.Spread { return h.CapacityRPS }},
	{Key: "p50_ms", Label: "p50", Unit: "ms", Digits: 3, Get: func(h *Headline) metrics.Spread { return h.P50Ms }},
	{Key: "p99_ms", Label: "p99", Unit: "ms", Digits: 3, Get: func(h *Headline) metrics.Spread { return h.P99Ms }},
	{Key: "router_cpu_us_per_request", Label: "CPU per request", Unit: "µs", Digits: 1, Get: func(h *Headline) metrics.Spread { return h.RouterCPUUs }},
}

// figureKeys maps a verdict's figure label to its key.
var figureKeys = func() map[string]string {
	m := map[string]string{}
	for _, f := range Figures {
		m[f.Label] = f.Key
	}
	return m
}()

// FigureByKey returns the figure with key, or nil.
func FigureByKey(key string) *Figure {
	for i := range Figures {
		if Figures[i].Key == key {
			return &Figures[i]
		}
	}
	return nil
}

// with sets the verdict's winner and text.
func (v Verdict) with(winner, text string) Verdict {
	v.Winner, v.Text = winner, text
	return v
}
