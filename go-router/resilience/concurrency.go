package resilience

import "sync/atomic"

// Concurrency counts the requests in flight to one placement (contract
// section 2, rule 5). The count survives reloads with the endpoint; the
// limit is the snapshot's.
type Concurrency struct {
	inflight atomic.Int64
}

// Enter counts one request in and reports whether it fits within limit
// (0: no limit). Leave must follow either way.
func (c *Concurrency) Enter(limit int64) bool {
	n := c.inflight.Add(1)
	return limit <= 0 || n <= limit
}

// Leave counts one request out.
func (c *Concurrency) Leave() { c.inflight.Add(-1) }

// InFlight is the number of requests in flight (/debug/upstreams).
func (c *Concurrency) InFlight() int64 { return c.inflight.Load() }
