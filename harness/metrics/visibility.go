package metrics

import (
	"time"
)

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
