package cell

import (
	"strconv"
	"sync/atomic"
)

// Counters are a cell's traffic counts. Every field is an atomic so the
// request path never takes a lock; a snapshot is therefore not one instant
// across fields, which is fine for a test double.
type Counters struct {
	requests     atomic.Uint64 // non-health requests, including bad knobs
	healthProbes atomic.Uint64
	healthFailed atomic.Uint64 // probes answered 503
	closed       atomic.Uint64 // connections closed without an answer (close=1)
	cancelled    atomic.Uint64 // requests whose client left during a delay
	inflight     atomic.Int64  // non-health requests being handled now
	byStatus     [maxStatus + 1]atomic.Uint64
}

// CountersSnapshot is the JSON form of Counters.
type CountersSnapshot struct {
	Requests     uint64            `json:"requests"`
	HealthProbes uint64            `json:"health_probes"`
	HealthFailed uint64            `json:"health_failed"`
	Closed       uint64            `json:"closed"`
	Cancelled    uint64            `json:"cancelled"`
	Inflight     int64             `json:"inflight"`
	ByStatus     map[string]uint64 `json:"by_status"`
}

func (c *Counters) countStatus(code int) {
	if code >= 0 && code < len(c.byStatus) {
		c.byStatus[code].Add(1)
	}
}

// Snapshot reads every counter.
func (c *Counters) Snapshot() CountersSnapshot {
	s := CountersSnapshot{
		Requests:     c.requests.Load(),
		HealthProbes: c.healthProbes.Load(),
		HealthFailed: c.healthFailed.Load(),
		Closed:       c.closed.Load(),
		Cancelled:    c.cancelled.Load(),
		Inflight:     c.inflight.Load(),
		ByStatus:     make(map[string]uint64),
	}
	for code := range c.byStatus {
		if n := c.byStatus[code].Load(); n > 0 {
			s.ByStatus[strconv.Itoa(code)] = n
		}
	}
	return s
}
