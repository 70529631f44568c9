package metrics

import (
	"time"
)

// Phase is the window of one state of a failure-injection timeline.
type Phase struct {
	Name        string  `json:"name"`
	FromMs      float64 `json:"from_ms"`
	ToMs        float64 `json:"to_ms"`
	Requests    int     `json:"requests"`
	SuccessRate float64 `json:"success_rate"`
	Errors      int     `json:"errors"`
	Failovers   int     `json:"failovers"`
	P99         float64 `json:"p99_ms"`
}

// PhaseOf summarizes the records sent in [from, to). Sent, not scheduled:
// a request due before a chaos action but sent after it, late, met the
// cells' new state (a soak on a loaded machine counted such requests'
// failures against the phase before each chaos onset).
func PhaseOf(name string, recs []Record, from, to time.Duration) Phase {
	var in []Record
	for _, r := range recs {
		if sent := r.Start + r.Lag; sent >= from && sent < to {
			in = append(in, r)
		}
	}
	s := Summarize(in, to-from)
	p := Phase{Name: name, FromMs: ms(from), ToMs: ms(to), Requests: s.Requests,
		SuccessRate: s.SuccessRate, Errors: s.Errors, P99: s.Latency.P99}
	for _, n := range s.Failover {
		p.Failovers += n
	}
	return p
}

// Transition finds the send time of the first record at or after `from`
// (and before `until`) for which match is true, as an offset from `from`;
// -1 when there is none. recs must be sorted by Start.
func Transition(recs []Record, from, until time.Duration, match func(Record) bool) float64 {
	for _, r := range recs {
		if r.Start < from {
			continue
		}
		if r.Start >= until {
			break
		}
		if match(r) {
			return ms(r.Start - from)
		}
	}
	return -1
}
