// Package metrics turns per-request records into the numbers of a report:
// latency percentiles, success and throughput, per-second timelines, the
// placements that served, and when a config version became visible.
//
// Everything here is pure: records in, numbers out, so it is tested on
// synthetic records.
package metrics

import (
	"math"
	"sort"
	"time"

	"cellbench/internal/stats"
)

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

// Latency percentiles in milliseconds.
type Latency struct {
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	P9999 float64 `json:"p9999_ms"`
	Max   float64 `json:"max_ms"`
	Count int     `json:"count"`
}

// Summary is the whole-run view.
type Summary struct {
	Requests int `json:"requests"`
	// Successes are 2xx responses; Errors are requests without a response.
	Successes int `json:"successes"`
	Errors    int `json:"errors"`
	// SuccessRate is Successes/Requests (0 without requests).
	SuccessRate float64 `json:"success_rate"`
	// OfferedRate is Requests per second of the window; Throughput is
	// Successes per second of the window.
	OfferedRate float64 `json:"offered_rps"`
	Throughput  float64 `json:"throughput_rps"`
	// Latency is over every request that got a response (any status);
	// requests without a response are counted in Errors, not here.
	Latency Latency `json:"latency"`
	// Codes counts statuses ("0" for no response); TopErrors the most
	// frequent transport errors.
	Codes     map[string]int `json:"codes"`
	TopErrors []Count        `json:"top_errors,omitempty"`
	// Served counts the placement or cell that answered; Failover the
	// X-Failover-Reason values.
	Served   map[string]int `json:"served"`
	Failover map[string]int `json:"failover,omitempty"`
	// LateSends counts requests the generator sent more than LateAfter
	// after their scheduled time by its own doing; LateFraction is their
	// share. WaitedForConnection counts requests that found every
	// connection busy (the target was slow, not the generator).
	LateSends           int     `json:"late_sends"`
	LateFraction        float64 `json:"late_fraction"`
	WaitedForConnection int     `json:"waited_for_connection"`
}

// LateAfter is how late a send may be before it counts as late, and
// MaxLateFraction the share of late sends above which a run is invalid:
// its latencies describe the generator's schedule, not the target.
const (
	LateAfter       = time.Millisecond
	MaxLateFraction = 0.01
)

// GeneratorKeptUp reports whether the generator kept its schedule (at most
// MaxLateFraction of sends late).
func (s Summary) GeneratorKeptUp() bool { return s.LateFraction <= MaxLateFraction }

// Count is a named counter in a ranked list.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LatencyOf computes the percentiles of the records that got a response.
func LatencyOf(recs []Record) Latency {
	lat := make([]time.Duration, 0, len(recs))
	var sum time.Duration
	for _, r := range recs {
		if r.Code == 0 {
			continue
		}
		lat = append(lat, r.Latency)
		sum += r.Latency
	}
	if len(lat) == 0 {
		return Latency{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return Latency{
		Mean:  ms(sum) / float64(len(lat)),
		P50:   ms(stats.Percentile(lat, 0.50)),
		P90:   ms(stats.Percentile(lat, 0.90)),
		P99:   ms(stats.Percentile(lat, 0.99)),
		P999:  ms(stats.Percentile(lat, 0.999)),
		P9999: ms(stats.Percentile(lat, 0.9999)),
		Max:   ms(lat[len(lat)-1]),
		Count: len(lat),
	}
}

// Summarize computes the summary of recs over a window of the given length.
func Summarize(recs []Record, window time.Duration) Summary {
	s := Summary{
		Requests: len(recs),
		Codes:    map[string]int{},
		Served:   map[string]int{},
		Failover: map[string]int{},
		Latency:  LatencyOf(recs),
	}
	errs := map[string]int{}
	for _, r := range recs {
		s.Codes[itoa(int(r.Code))]++
		if r.Success() {
			s.Successes++
		}
		if r.Code == 0 {
			s.Errors++
			errs[r.Error]++
		}
		if r.Served != "" {
			s.Served[r.Served]++
		}
		if r.Failover != "" {
			s.Failover[r.Failover]++
		}
		if r.Lag > LateAfter {
			s.LateSends++
		}
		if r.NoFreeConn {
			s.WaitedForConnection++
		}
	}
	if s.Requests > 0 {
		s.SuccessRate = float64(s.Successes) / float64(s.Requests)
		s.LateFraction = float64(s.LateSends) / float64(s.Requests)
	}
	if window > 0 {
		s.OfferedRate = float64(s.Requests) / window.Seconds()
		s.Throughput = float64(s.Successes) / window.Seconds()
	}
	s.TopErrors = top(errs, 5)
	return s
}

func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [8]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Second is one second of a timeline, by request send time.
type Second struct {
	// Second is the offset from the run's start in whole seconds.
	Second      int     `json:"second"`
	Requests    int     `json:"requests"`
	Successes   int     `json:"successes"`
	SuccessRate float64 `json:"success_rate"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	// Failovers counts responses with an X-Failover-Reason.
	Failovers int `json:"failovers"`
	// Served counts the placements or cells that answered.
	Served map[string]int `json:"served,omitempty"`
	// Versions counts X-Config-Version values.
	Versions map[string]int `json:"versions,omitempty"`
}

// Timeline buckets recs into seconds [0, length) by send time; a second
// without requests is present with zero counts so gaps show in charts.
func Timeline(recs []Record, length time.Duration) []Second {
	n := int(math.Ceil(length.Seconds()))
	if n < 1 {
		n = 1
	}
	buckets := make([][]Record, n)
	for _, r := range recs {
		i := int(r.Start / time.Second)
		if i < 0 {
			i = 0
		}
		if i >= n {
			i = n - 1
		}
		buckets[i] = append(buckets[i], r)
	}
	out := make([]Second, n)
	for i, b := range buckets {
		sec := Second{Second: i, Requests: len(b)}
		lat := LatencyOf(b)
		sec.P50, sec.P99, sec.Max = lat.P50, lat.P99, lat.Max
		for _, r := range b {
			if r.Success() {
				sec.Successes++
			}
			if r.Failover != "" {
				sec.Failovers++
			}
			if r.Served != "" {
				if sec.Served == nil {
					sec.Served = map[string]int{}
				}
				sec.Served[r.Served]++
			}
			if r.Version != "" {
				if sec.Versions == nil {
					sec.Versions = map[string]int{}
				}
				sec.Versions[r.Version]++
			}
		}
		if sec.Requests > 0 {
			sec.SuccessRate = float64(sec.Successes) / float64(sec.Requests)
		}
		out[i] = sec
	}
	return out
}

// Visibility describes when a new config version reached clients.
type Visibility struct {
	// FirstSeenMs is the time from the change to the send time of the first
	// response that carried the new version; -1 when none did (the version
	// was never applied, or a newer one replaced it first).
	FirstSeenMs float64 `json:"first_seen_ms"`
	// AllAfterMs is the time from the change to the send time of the first
	// response after the last one that carried an older version: from then
	// on every client saw this version or a newer one. -1 when older
	// versions were still served at the end of the run.
	AllAfterMs float64 `json:"all_after_ms"`
	// Stale counts responses that carried an older version after the first
	// one with the new version (a swap that is not atomic for every worker
	// shows here).
	Stale int `json:"stale"`
}

// VersionVisibility measures how long after `at` the version reached
// clients. rank orders the versions as they were applied (the bootstrap
// version 0, then 1, 2, …); responses with a version not in rank are
// ignored. recs must be sorted by Start.
func VersionVisibility(recs []Record, rank map[string]int, version string, at time.Duration) Visibility {
	v := Visibility{FirstSeenMs: -1, AllAfterMs: -1}
	want, ok := rank[version]
	if !ok {
		return v
	}
	seen := false
	switched := false
	for _, r := range recs {
		if r.Start < at {
			continue
		}
		rk, known := rank[r.Version]
		if !known {
			continue
		}
		if r.Version == version && !seen {
			seen = true
			v.FirstSeenMs = ms(r.Start - at)
		}
		if rk < want {
			switched = false
			if seen {
				v.Stale++
			}
			continue
		}
		if !switched {
			switched = true
			v.AllAfterMs = ms(r.Start - at)
		}
	}
	if !switched {
		v.AllAfterMs = -1
	}
	return v
}

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

// Spread is a figure over rounds: the median (by Percentile, the one
// percentile definition of the project) with the smallest and largest
// value.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// SpreadOf summarizes the values of the rounds.
func SpreadOf(values []float64) Spread {
	if len(values) == 0 {
		return Spread{}
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	return Spread{Median: stats.Percentile(sorted, 0.5), Min: sorted[0], Max: sorted[len(sorted)-1], N: len(sorted)}
}

// Overlaps reports whether two ranges share a value: then the rounds do
// not separate the two figures.
func (a Spread) Overlaps(b Spread) bool { return a.Min <= b.Max && b.Min <= a.Max }

// LongestOutage is the longest stretch of scheduled time without a
// successful request: from the window's start to the first success, between
// two successes, or from the last success to the window's end. recs must
// be sorted by Start.
func LongestOutage(recs []Record, window time.Duration) time.Duration {
	var longest, last time.Duration
	for _, r := range recs {
		if !r.Success() {
			continue
		}
		longest = max(longest, r.Start-last)
		last = r.Start
	}
	return max(longest, window-last)
}
