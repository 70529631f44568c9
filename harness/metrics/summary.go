package metrics

import (
	"sort"
	"time"

	"cellbench/internal/stats"
)

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
