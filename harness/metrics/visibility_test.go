package metrics

import (
	"testing"
	"time"
)

func TestVersionVisibility(t *testing.T) {
	rank := map[string]int{"v0": 0, "v1": 1, "v2": 2}
	mk := func(startMs int, v string) Record { r := rec(startMs, 1, 200); r.Version = v; return r }
	recs := []Record{mk(0, "v0"), mk(100, "v0"), mk(200, "v0"), mk(300, "v1"), mk(400, "v0"), mk(500, "v1"), mk(600, "v1"), mk(700, "v2")}
	v := VersionVisibility(recs, rank, "v1", 150*time.Millisecond)
	// First v1 at 300 (+150), a stale v0 at 400, every answer from 500 on
	// is v1 or newer (+350).
	if v.FirstSeenMs != 150 || v.AllAfterMs != 350 || v.Stale != 1 {
		t.Fatalf("v1: %+v", v)
	}
	// A version replaced before anyone saw it: never served, yet clients
	// moved past it.
	never := VersionVisibility([]Record{mk(0, "v0"), mk(100, "v2")}, rank, "v1", 50*time.Millisecond)
	if never.FirstSeenMs != -1 || never.AllAfterMs != 50 {
		t.Fatalf("superseded: %+v", never)
	}
	stuck := VersionVisibility([]Record{mk(0, "v0"), mk(100, "v0")}, rank, "v1", 50*time.Millisecond)
	if stuck.FirstSeenMs != -1 || stuck.AllAfterMs != -1 {
		t.Fatalf("never applied: %+v", stuck)
	}
}
