package metrics

import (
	"testing"
	"time"
)

func rec(startMs, latMs int, code uint16) Record {
	return Record{Start: time.Duration(startMs) * time.Millisecond, Latency: time.Duration(latMs) * time.Millisecond, Code: code}
}

func TestSummarize(t *testing.T) {
	recs := []Record{
		rec(0, 1, 200), rec(100, 2, 200), rec(200, 3, 503), rec(300, 4, 200),
		{Start: 400 * time.Millisecond, Latency: time.Second, Error: "connection refused"},
	}
	recs[0].Served, recs[1].Served, recs[3].Served = "tier1", "tier1", "tier2"
	recs[3].Failover = "unhealthy"
	s := Summarize(recs, 2*time.Second)
	if s.Requests != 5 || s.Successes != 3 || s.Errors != 1 {
		t.Fatalf("counts %+v", s)
	}
	if s.SuccessRate != 0.6 || s.OfferedRate != 2.5 || s.Throughput != 1.5 {
		t.Fatalf("rates %v %v %v", s.SuccessRate, s.OfferedRate, s.Throughput)
	}
	// The request without a response is not a latency sample.
	if s.Latency.Count != 4 || s.Latency.Max != 4 || s.Latency.P50 != 2 || s.Latency.Mean != 2.5 {
		t.Fatalf("latency %+v", s.Latency)
	}
	if s.Codes["200"] != 3 || s.Codes["503"] != 1 || s.Codes["0"] != 1 {
		t.Fatalf("codes %v", s.Codes)
	}
	if s.Served["tier1"] != 2 || s.Failover["unhealthy"] != 1 {
		t.Fatalf("served %v failover %v", s.Served, s.Failover)
	}
	if len(s.TopErrors) != 1 || s.TopErrors[0] != (Count{"connection refused", 1}) {
		t.Fatalf("errors %v", s.TopErrors)
	}
}

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

func TestPhaseAndTransition(t *testing.T) {
	recs := []Record{rec(0, 1, 200), rec(1000, 1, 200), rec(1100, 1, 502), rec(1200, 1, 200), rec(2500, 1, 200)}
	recs[3].Failover = "unhealthy"
	p := PhaseOf("down", recs, time.Second, 2*time.Second)
	if p.Requests != 3 || p.Failovers != 1 || p.SuccessRate != 2.0/3 {
		t.Fatalf("phase %+v", p)
	}
	// Due at 0.95 s but sent 100 ms late: it met the 1-s phase's state.
	late := rec(950, 1, 502)
	late.Lag = 100 * time.Millisecond
	if p := PhaseOf("down", append([]Record{late}, recs...), time.Second, 2*time.Second); p.Requests != 4 || p.SuccessRate != 2.0/4 {
		t.Fatalf("a late request is counted in the phase it was sent in: %+v", p)
	}
	if p := PhaseOf("before", []Record{late}, 0, time.Second); p.Requests != 0 {
		t.Fatalf("a late request is counted in the phase it was due in: %+v", p)
	}
	got := Transition(recs, time.Second, 2*time.Second, func(r Record) bool { return r.Failover != "" })
	if got != 200 {
		t.Fatalf("first failover +%v ms, want +200", got)
	}
	if got := Transition(recs, 2*time.Second, 3*time.Second, func(r Record) bool { return !r.Success() }); got != -1 {
		t.Fatalf("no error after 2 s, got +%v", got)
	}
}

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

func TestLateSendsMakeARunInvalid(t *testing.T) {
	var recs []Record
	for i := 0; i < 1000; i++ {
		r := Record{Start: time.Duration(i) * time.Millisecond, Latency: time.Millisecond, Code: 200}
		if i < 10 {
			r.Lag = 2 * time.Millisecond // 1 %: still valid
		}
		if i%100 == 0 {
			r.NoFreeConn = true
		}
		recs = append(recs, r)
	}
	s := Summarize(recs, time.Second)
	if s.LateSends != 10 || s.WaitedForConnection != 10 || !s.GeneratorKeptUp() {
		t.Fatalf("%+v", s)
	}
	recs[10].Lag = 1001 * time.Microsecond
	if s := Summarize(recs, time.Second); s.LateSends != 11 || s.GeneratorKeptUp() {
		t.Fatalf("1.1 %% late sends kept up: %+v", s)
	}
}

func TestLongestOutage(t *testing.T) {
	recs := []Record{rec(0, 1, 200), rec(100, 1, 503), rec(2600, 1, 0), rec(2700, 1, 200), rec(2800, 1, 200)}
	if got := LongestOutage(recs, 3*time.Second); got != 2700*time.Millisecond {
		t.Fatalf("outage %v, want 2.7s (0 → 2700 ms)", got)
	}
	if got := LongestOutage(nil, time.Second); got != time.Second {
		t.Fatalf("no request answered: %v", got)
	}
}
