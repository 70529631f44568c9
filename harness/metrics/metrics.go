// Package metrics turns per-request records into the numbers of a report:
// latency percentiles, success and throughput, per-second timelines, the
// placements that served, and when a config version became visible.
//
// Everything here is pure: records in, numbers out, so it is tested on
// synthetic records.
package metrics

import "time"

// Record is one request as the harness saw it.
type Record struct {
	// Start is the offset of the request's scheduled send time from the
	// run's start (for a closed loop, its actual send time).
	Start time.Duration
	// Latency runs from the scheduled send time to the complete response,
	// so that time a request spent waiting to be sent is in it (no
	// coordinated omission).
	Latency time.Duration
	// Lag is how late the generator itself sent the request (see
	// loadgen.Result.GeneratorLag); NoFreeConn marks a request that found
	// every connection busy at its scheduled time.
	Lag        time.Duration
	NoFreeConn bool
	// Code is the HTTP status, 0 when no response came.
	Code uint16
	// Error is the transport error (empty when a response came).
	Error string
	// Target is the index of the scenario target that made the request.
	Target int
	// Served is the placement (X-Routed-To) or, without a router, the cell
	// (X-Cell) that answered.
	Served   string
	Failover string // X-Failover-Reason
	Version  string // X-Config-Version
}

// Success reports whether the request got a 2xx response.
func (r Record) Success() bool { return r.Code >= 200 && r.Code < 300 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
