// Package proxy is the Go router's request path and the state behind it:
// the handler, upstream attempts, health checks, breakers, rate limits,
// limits, the live config snapshot, logs, metrics and the admin listener.
// Decisions that need no I/O live in cellbench/go-router/routing.
package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"cellbench/config"
	"cellbench/go-router/routing"
)

// Config sources as /debug/config and cellbench_config_info name them.
const (
	SourceFile         = "file"
	SourceControlPlane = "control_plane"
)

// Router is the proxy handler plus the state that outlives one config.
type Router struct {
	engine      Engine
	events      *slog.Logger
	access      *AccessLog // nil when the access log is off
	metrics     *metrics
	ids         *requestIDs
	probeClient *http.Client
	// life bounds the health checkers; Close ends it.
	life context.Context
	end  context.CancelFunc

	current      atomic.Pointer[snapshot]
	lastRejected atomic.Pointer[rejection]

	// applyMu serializes Apply; states is only touched under it.
	applyMu sync.Mutex
	states  map[string]*placementState
}

// snapshot is one applied config, compiled for the request path. It is
// immutable: a request loads it once and sees one config throughout.
type snapshot struct {
	cfg           *config.Config
	doc           []byte // config.Marshal(cfg), for /debug/config
	table         *routing.Table
	placements    []*placement // by routing index
	versionHeader []string
	source        string
	appliedAt     time.Time
}

// placement is a placement as one snapshot sees it: its settings and the
// long-lived state it shares with the snapshots before and after it.
type placement struct {
	name             string
	endpoint         string
	routedToHeader   []string
	health           *health
	breaker          *breaker // nil: no breaker
	limiter          *rateLimiter
	upstream         *upstream
	inflight         *atomic.Int64
	metrics          *placementMetrics
	maxAttempts      int
	concurrencyLimit int64
	maxBodyBytes     int64
	bodyIdle         time.Duration // response_body_idle_ms
}

// placementState is the long-lived part of a placement. It survives a swap
// while the endpoint stays the same; each piece is replaced only when its
// own settings change.
type placementState struct {
	endpoint string
	health   *health
	checker  *healthChecker
	breaker  *breaker
	limiter  *rateLimiter
	upstream *upstream
	inflight *atomic.Int64
}

type rejection struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// Options configure New.
type Options struct {
	Engine    Engine       // upstream client; "" is EngineTuned
	Events    *slog.Logger // event log (contract section 4)
	AccessLog *AccessLog   // nil: off
}

// New makes a router that serves nothing until the first Apply.
func New(opts Options) *Router {
	life, end := context.WithCancel(context.Background())
	if opts.Engine == "" {
		opts.Engine = EngineTuned
	}
	rt := &Router{
		engine:      opts.Engine,
		events:      opts.Events,
		access:      opts.AccessLog,
		ids:         newRequestIDs(),
		probeClient: newProbeClient(),
		life:        life,
		end:         end,
		states:      make(map[string]*placementState),
	}
	rt.metrics = newMetrics(liveCollector{rt}, opts.Engine)
	return rt
}

// Engine is the engine the router's upstream clients run on.
func (rt *Router) Engine() Engine { return rt.engine }

// Version is the version being served ("" before the first Apply).
func (rt *Router) Version() string {
	if s := rt.current.Load(); s != nil {
		return s.cfg.Version
	}
	return ""
}

// Apply validates doc and, if it is valid, swaps it in atomically. A
// rejected document changes nothing but last_rejected and the rejected
// counter; the error is a *config.Error.
func (rt *Router) Apply(doc []byte, source string) error {
	cfg, err := config.Parse(doc)
	if err != nil {
		rt.reject(doc, source, err)
		return err
	}
	rendered, err := config.Marshal(cfg)
	if err != nil {
		rt.reject(doc, source, err)
		return err
	}
	rt.applyMu.Lock()
	defer rt.applyMu.Unlock()
	s := &snapshot{
		cfg:           cfg,
		doc:           rendered,
		table:         routing.Compile(cfg),
		versionHeader: []string{cfg.Version},
		source:        source,
		appliedAt:     time.Now().UTC(),
	}
	var retired []*upstream
	next := make(map[string]*placementState, len(cfg.Placements))
	for _, name := range s.table.Names {
		pc := cfg.Placements[name]
		st, dropped := rt.carryOver(name, pc, rt.states[name])
		retired = append(retired, dropped...)
		next[name] = st
		s.placements = append(s.placements, &placement{
			name:             name,
			endpoint:         pc.Endpoint,
			routedToHeader:   []string{name},
			health:           st.health,
			breaker:          st.breaker,
			limiter:          st.limiter,
			upstream:         st.upstream,
			inflight:         st.inflight,
			metrics:          rt.metrics.placement(name),
			maxAttempts:      pc.MaxAttempts(),
			concurrencyLimit: pc.ConcurrencyLimit,
			maxBodyBytes:     pc.MaxRequestBodyBytes,
			bodyIdle:         pc.ResponseBodyIdleTimeout(),
		})
	}
	for name, old := range rt.states {
		if _, ok := next[name]; !ok {
			retired = append(retired, old.teardown()...)
		}
	}
	rt.states = next
	rt.current.Store(s)
	// Requests of the old snapshot may still be using retired pools; only
	// their idle connections are closed, busy ones finish normally.
	for _, u := range retired {
		u.close()
	}
	rt.metrics.reloads.WithLabelValues("applied").Inc()
	rt.metrics.setConfig(cfg.Version, source)
	rt.events.Info("config_applied", "version", cfg.Version, "source", source, "placements", len(cfg.Placements))
	return nil
}

// carryOver builds the state of placement name for its new settings,
// keeping what still fits from old. It returns pools that are no longer used.
func (rt *Router) carryOver(name string, pc *config.Placement, old *placementState) (*placementState, []*upstream) {
	var retired []*upstream
	if old != nil && old.endpoint != pc.Endpoint {
		retired = old.teardown()
		old = nil
	}
	st := &placementState{endpoint: pc.Endpoint}
	if old == nil {
		st.health = &health{}
		st.inflight = new(atomic.Int64)
	} else {
		st.health, st.inflight = old.health, old.inflight
	}

	// Health checker: restarted when its settings change, status kept.
	if old != nil && old.checker != nil && (pc.HealthCheck == nil || *pc.HealthCheck != old.checker.settings) {
		old.checker.close()
	} else if old != nil {
		st.checker = old.checker
	}
	if pc.HealthCheck == nil {
		st.checker = nil
		if st.health.unhealthy.CompareAndSwap(true, false) {
			rt.healthChanged(name, "unhealthy", "healthy")
		}
	} else if st.checker == nil {
		st.checker = startHealthChecker(rt.life, rt.probeClient, name, pc.Endpoint, *pc.HealthCheck, st.health, rt.healthChanged)
	}

	// Breaker: kept while its settings are unchanged.
	switch {
	case pc.CircuitBreaker == nil:
	case old != nil && old.breaker != nil && old.breaker.settings == *pc.CircuitBreaker:
		st.breaker = old.breaker
	default:
		st.breaker = newBreaker(name, *pc.CircuitBreaker, rt.circuitChanged)
	}

	// Rate limiter: kept while its settings are unchanged.
	switch {
	case old != nil && old.limiter != nil && pc.RateLimit != nil && old.limiter.settings == *pc.RateLimit:
		st.limiter = old.limiter
	case pc.RateLimit != nil:
		st.limiter = newRateLimiter(*pc.RateLimit)
	}
	if old != nil && old.limiter != nil && old.limiter != st.limiter {
		old.limiter.close()
	}

	// Connection pool: kept while endpoint and timeouts are unchanged.
	if old != nil && old.upstream.sameAs(pc) {
		st.upstream = old.upstream
	} else {
		st.upstream = newUpstream(pc, rt.engine)
		if old != nil {
			retired = append(retired, old.upstream)
		}
	}
	return st, retired
}

// teardown stops everything a removed placement runs and returns its pool.
func (st *placementState) teardown() []*upstream {
	if st.checker != nil {
		st.checker.close()
	}
	if st.limiter != nil {
		st.limiter.close()
	}
	return []*upstream{st.upstream}
}

func (rt *Router) reject(doc []byte, source string, err error) {
	version := versionOf(doc)
	rt.lastRejected.Store(&rejection{Version: version, Error: err.Error(), At: time.Now().UTC()})
	rt.metrics.reloads.WithLabelValues("rejected").Inc()
	rt.events.Warn("config_rejected", "version", version, "source", source, "code", config.CodeOf(err), "error", err.Error())
}

func (rt *Router) healthChanged(name, from, to string) {
	rt.events.Info("health_changed", "placement", name, "from", from, "to", to)
}

func (rt *Router) circuitChanged(name, from, to string) {
	rt.events.Info("circuit_changed", "placement", name, "from", from, "to", to)
}

// SetControlPlaneConnected updates cellbench_control_plane_connected.
func (rt *Router) SetControlPlaneConnected(connected bool) {
	v := 0.0
	if connected {
		v = 1
	}
	rt.metrics.cpConnected.Set(v)
}

// Close stops health checkers and rate-limit sweepers and closes idle
// upstream connections.
func (rt *Router) Close() {
	rt.applyMu.Lock()
	defer rt.applyMu.Unlock()
	for _, st := range rt.states {
		for _, u := range st.teardown() {
			u.close()
		}
	}
	rt.states = map[string]*placementState{}
	rt.end()
}
