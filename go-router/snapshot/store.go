package snapshot

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"cellbench/config"
	"cellbench/go-router/engine"
	"cellbench/go-router/obs"
	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/go-router/upstream"
)

// SnapshotStore holds the live snapshot and the state that outlives one
// config: an atomic swap on Apply, the last good snapshot kept on a
// rejection.
type SnapshotStore struct {
	engine      engine.Engine
	events      *slog.Logger
	metrics     *obs.Metrics
	probeClient *http.Client
	// life bounds the health checkers; Close ends it.
	life context.Context
	end  context.CancelFunc

	current      atomic.Pointer[Snapshot]
	lastRejected atomic.Pointer[Rejection]

	// applyMu serializes Apply; runtimes is only touched under it.
	applyMu  sync.Mutex
	runtimes map[string]*PlacementRuntime
}

// Options configure NewStore.
type Options struct {
	Engine  engine.Engine // of the upstream clients
	Events  *slog.Logger  // event log (contract section 4)
	Metrics *obs.Metrics  // the store reports reloads and feeds the live series
}

// NewStore makes a store that holds nothing until the first Apply.
func NewStore(opts Options) *SnapshotStore {
	life, end := context.WithCancel(context.Background())
	s := &SnapshotStore{
		engine:      opts.Engine,
		events:      opts.Events,
		metrics:     opts.Metrics,
		probeClient: resilience.NewProbeClient(),
		life:        life,
		end:         end,
		runtimes:    make(map[string]*PlacementRuntime),
	}
	s.metrics.ReadPlacements(s.statuses())
	return s
}

// Current is the snapshot being served (nil before the first Apply).
func (s *SnapshotStore) Current() *Snapshot { return s.current.Load() }

// LastRejected is the last rejected document (nil if none).
func (s *SnapshotStore) LastRejected() *Rejection { return s.lastRejected.Load() }

// Version is the version being served ("" before the first Apply).
func (s *SnapshotStore) Version() string {
	if snap := s.current.Load(); snap != nil {
		return snap.Config.Version
	}
	return ""
}

// Apply validates doc and, if it is valid, swaps it in atomically. A
// rejected document changes nothing but last_rejected and the rejected
// counter; the error is a *config.Error.
func (s *SnapshotStore) Apply(doc []byte, source string) error {
	cfg, err := config.Parse(doc)
	if err != nil {
		s.reject(doc, source, err)
		return err
	}
	rendered, err := config.Marshal(cfg)
	if err != nil {
		s.reject(doc, source, err)
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	snap := &Snapshot{
		Config:        cfg,
		Doc:           rendered,
		Table:         routing.Compile(cfg),
		VersionHeader: []string{cfg.Version},
		Source:        source,
		AppliedAt:     time.Now().UTC(),
	}
	var retired []*upstream.Upstream
	next := make(map[string]*PlacementRuntime, len(cfg.Placements))
	for _, name := range snap.Table.Names {
		pc := cfg.Placements[name]
		rt, dropped := s.carryOver(name, pc, s.runtimes[name])
		retired = append(retired, dropped...)
		next[name] = rt
		snap.Placements = append(snap.Placements, &Placement{
			Name:             name,
			Endpoint:         pc.Endpoint,
			RoutedToHeader:   []string{name},
			Health:           rt.health,
			Breaker:          rt.breaker,
			Limiter:          rt.limiter,
			Upstream:         rt.upstream,
			Concurrency:      rt.concurrency,
			Metrics:          s.metrics.Placement(name),
			MaxAttempts:      pc.MaxAttempts(),
			ConcurrencyLimit: pc.ConcurrencyLimit,
			MaxBodyBytes:     pc.MaxRequestBodyBytes,
			BodyIdle:         pc.ResponseBodyIdleTimeout(),
		})
	}
	for name, old := range s.runtimes {
		if _, ok := next[name]; !ok {
			retired = append(retired, old.teardown()...)
		}
	}
	s.runtimes = next
	s.current.Store(snap)
	// Requests of the old snapshot may still be using retired pools; only
	// their idle connections are closed, busy ones finish normally.
	for _, u := range retired {
		u.Retire()
	}
	s.metrics.ConfigApplied(cfg.Version, source)
	s.events.Info("config_applied", "version", cfg.Version, "source", source, "placements", len(cfg.Placements))
	return nil
}

func (s *SnapshotStore) reject(doc []byte, source string, err error) {
	version := versionOf(doc)
	s.lastRejected.Store(&Rejection{Version: version, Error: err.Error(), At: time.Now().UTC()})
	s.metrics.ConfigRejected()
	s.events.Warn("config_rejected", "version", version, "source", source, "code", config.CodeOf(err), "error", err.Error())
}

// Close stops health checkers and rate-limit sweepers and closes idle
// upstream connections.
func (s *SnapshotStore) Close() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for _, rt := range s.runtimes {
		for _, u := range rt.teardown() {
			u.Retire()
		}
	}
	s.runtimes = map[string]*PlacementRuntime{}
	s.end()
}
