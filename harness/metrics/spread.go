package metrics

import (
	"sort"

	"cellbench/internal/stats"
)

// Spread is a figure over rounds: the median (by Percentile, the one
// percentile definition of the project) with the smallest and largest
// value.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// SpreadOf summarizes the values of the rounds.
func SpreadOf(values []float64) Spread {
	if len(values) == 0 {
		return Spread{}
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	return Spread{Median: stats.Percentile(sorted, 0.5), Min: sorted[0], Max: sorted[len(sorted)-1], N: len(sorted)}
}

// Overlaps reports whether two ranges share a value: then the rounds do
// not separate the two figures.
func (a Spread) Overlaps(b Spread) bool { return a.Min <= b.Max && b.Min <= a.Max }
