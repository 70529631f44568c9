package metrics

import (
	"math"
	"time"
)

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
