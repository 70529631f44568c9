package stats

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 100 * time.Millisecond}, {0, time.Millisecond}, {1, 100 * time.Millisecond}}
	for _, c := range cases {
		if got := Percentile(v, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]time.Duration(nil), 0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestPercentileOfFloats(t *testing.T) {
	if got := Percentile([]float64{1, 2, 3, 4}, 0.5); got != 2 {
		t.Fatalf("median of four by nearest rank is the lower middle value, got %v", got)
	}
}
