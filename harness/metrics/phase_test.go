package metrics

import (
	"testing"
	"time"
)

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
