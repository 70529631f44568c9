// Package stats holds the project's one percentile definition, used by the
// harness's metrics and by every test or benchmark that reports a
// percentile, so that figures in reports, docs and benchmark output are
// computed alike.
package stats

import (
	"cmp"
	"math"
)

// Percentile returns the p-quantile (0..1) of sorted values by the
// nearest-rank method: the smallest value with at least p of the values at
// or below it, so p99 of 100 values is the 99th, never an interpolation
// between two values no request saw. The median of an even count is the
// lower middle value.
func Percentile[T cmp.Ordered](sorted []T, p float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}
