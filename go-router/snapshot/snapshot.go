// Package snapshot is go-router's config lifecycle: the SnapshotStore
// holds the live Snapshot behind one atomic pointer, applies a document
// (validate, compile, carry per-placement runtime state over, swap) or
// records why it was rejected, keeping the last good one; FileSource feeds
// it from a watched file and SIGHUP.
package snapshot

import (
	"iter"
	"time"

	"cellbench/config"
	"cellbench/go-router/obs"
	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/go-router/upstream"
)

// Config sources as /debug/config and cellbench_config_info name them.
const (
	SourceFile         = "file"
	SourceControlPlane = "control_plane"
)

// Snapshot is one applied config, compiled for the request path. It is
// immutable: a request loads it once and sees one config throughout.
type Snapshot struct {
	Config *config.Config
	// Doc is config.Marshal(Config), for /debug/config.
	Doc   []byte
	Table *routing.Table
	// Placements are indexed as Table.Names.
	Placements    []*Placement
	VersionHeader []string // X-Config-Version
	Source        string
	AppliedAt     time.Time
}

// Placement is a placement as one snapshot sees it: its settings and the
// PlacementRuntime it shares with the snapshots before and after it.
type Placement struct {
	Name           string
	Endpoint       string
	RoutedToHeader []string // X-Routed-To
	Health         *resilience.Health
	Breaker        *resilience.Breaker // nil: no breaker
	Limiter        *resilience.RateLimiter
	Upstream       *upstream.Upstream
	Concurrency    *resilience.Concurrency
	Metrics        *obs.PlacementMetrics
	MaxAttempts    int
	// ConcurrencyLimit and MaxBodyBytes are 0 when unlimited.
	ConcurrencyLimit int64
	MaxBodyBytes     int64
	BodyIdle         time.Duration // response_body_idle_ms
}

// CircuitState is the breaker state, closed without a breaker.
func (p *Placement) CircuitState() resilience.CircuitState {
	if p.Breaker == nil {
		return resilience.Closed
	}
	return p.Breaker.State()
}

// PlacementRuntime is the long-lived state of a placement: it survives a
// swap while the endpoint stays the same, and each piece is replaced only
// when its own settings change (carryOver).
type PlacementRuntime struct {
	endpoint    string
	health      *resilience.Health
	checker     *resilience.Checker
	breaker     *resilience.Breaker
	limiter     *resilience.RateLimiter
	upstream    *upstream.Upstream
	concurrency *resilience.Concurrency
}

// Rejection is the last document that failed validation (/debug/config).
type Rejection struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// statuses are the placements' live state for the metrics scrape.
func (s *SnapshotStore) statuses() iter.Seq[obs.PlacementStatus] {
	return func(yield func(obs.PlacementStatus) bool) {
		snap := s.Current()
		if snap == nil {
			return
		}
		for _, p := range snap.Placements {
			if !yield(obs.PlacementStatus{Name: p.Name, Healthy: !p.Health.Unhealthy(), Circuit: float64(p.CircuitState())}) {
				return
			}
		}
	}
}
