package metrics

import (
	"testing"
)

func TestSpreadAndOverlap(t *testing.T) {
	s := SpreadOf([]float64{3, 1, 2})
	if s != (Spread{Median: 2, Min: 1, Max: 3, N: 3}) {
		t.Fatalf("%+v", s)
	}
	if even := SpreadOf([]float64{4, 1}); even.Median != 1 {
		t.Fatalf("median of two by nearest rank is the lower one: %+v", even)
	}
	if (Spread{}) != SpreadOf(nil) {
		t.Fatal("empty spread")
	}
	a, b, c := Spread{Min: 1, Max: 2}, Spread{Min: 2, Max: 3}, Spread{Min: 2.1, Max: 3}
	if !a.Overlaps(b) || !b.Overlaps(a) || a.Overlaps(c) || c.Overlaps(a) {
		t.Fatal("overlap")
	}
}
