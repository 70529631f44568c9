package metrics

import (
	"testing"
	"time"
)

func TestTimelineBucketsBySendTime(t *testing.T) {
	recs := []Record{rec(10, 1, 200), rec(900, 50, 200), rec(1500, 2, 500), rec(3100, 3, 200)}
	recs[0].Version, recs[2].Version = "a", "b"
	recs[1].Failover = "circuit_open"
	tl := Timeline(recs, 3500*time.Millisecond)
	if len(tl) != 4 {
		t.Fatalf("%d seconds, want 4", len(tl))
	}
	if tl[0].Requests != 2 || tl[0].Successes != 2 || tl[0].Failovers != 1 || tl[0].P99 != 50 || tl[0].Versions["a"] != 1 {
		t.Fatalf("second 0: %+v", tl[0])
	}
	if tl[1].Requests != 1 || tl[1].SuccessRate != 0 || tl[1].Versions["b"] != 1 {
		t.Fatalf("second 1: %+v", tl[1])
	}
	// An empty second is kept so that a stall shows as a gap.
	if tl[2].Requests != 0 || tl[2].SuccessRate != 0 {
		t.Fatalf("second 2: %+v", tl[2])
	}
	if tl[3].Requests != 1 {
		t.Fatalf("second 3: %+v", tl[3])
	}
}
