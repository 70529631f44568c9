// Package proxy is the Go router's request path: Router is the
// http.Handler that runs contract section 2 for each request over the
// live snapshot. It is the adapter between net/http and the core:
// decisions in go-router/routing, protections and the attempt loop's
// state in go-router/resilience, the config lifecycle in
// go-router/snapshot, the upstream client in go-router/upstream, logs and
// metrics in go-router/obs.
package proxy

import (
	"log/slog"

	"cellbench/go-router/engine"
	"cellbench/go-router/obs"
	"cellbench/go-router/snapshot"
)

// Router is the proxy handler holding the live config.
type Router struct {
	engine  engine.Engine
	events  *slog.Logger
	access  *obs.AccessLog // nil when the access log is off
	metrics *obs.Metrics
	store   *snapshot.SnapshotStore
	ids     *requestIDs
}

// Options configure New.
type Options struct {
	Engine    engine.Engine // upstream client; "" is engine.Tuned
	Events    *slog.Logger  // event log (contract section 4)
	AccessLog *obs.AccessLog
}

// New makes a router that serves nothing until the first Store().Apply.
func New(opts Options) *Router {
	if opts.Engine == "" {
		opts.Engine = engine.Tuned
	}
	metrics := obs.NewMetrics(opts.Engine)
	return &Router{
		engine:  opts.Engine,
		events:  opts.Events,
		access:  opts.AccessLog,
		metrics: metrics,
		store:   snapshot.NewStore(snapshot.Options{Engine: opts.Engine, Events: opts.Events, Metrics: metrics}),
		ids:     newRequestIDs(),
	}
}

// Store is the live config: Apply documents there.
func (rt *Router) Store() *snapshot.SnapshotStore { return rt.store }

// Engine is the engine the router's upstream clients run on.
func (rt *Router) Engine() engine.Engine { return rt.engine }

// SetControlPlaneConnected updates cellbench_control_plane_connected.
func (rt *Router) SetControlPlaneConnected(connected bool) {
	rt.metrics.SetControlPlaneConnected(connected)
}

// ReadClientStats sets where the client connection series are read from:
// open connections, waiting ones shed at the cap, newcomers refused there.
func (rt *Router) ReadClientStats(read func() (open int, shed, refused int64)) {
	rt.metrics.ReadClientStats(read)
}

// Close stops health checkers and rate-limit sweepers and closes idle
// upstream connections.
func (rt *Router) Close() { rt.store.Close() }
