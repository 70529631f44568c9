package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"cellbench/go-router/engine"
	"cellbench/go-router/snapshot"
)

// AdminHandler serves the admin listener (contract section 6).
func (rt *Router) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /debug/config", rt.serveDebugConfig)
	mux.HandleFunc("GET /debug/upstreams", rt.serveDebugUpstreams)
	mux.HandleFunc("GET /debug/router", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"router": engine.RouterName, "engine": string(rt.engine)})
	})
	mux.Handle("GET /metrics", rt.metrics.Handler())
	// Profiles on the admin listener (loopback by default) are how the
	// request path was tuned; an operator gets the same view in production.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func (rt *Router) serveDebugConfig(w http.ResponseWriter, _ *http.Request) {
	s := rt.store.Current()
	writeJSON(w, struct {
		Version      string              `json:"version"`
		Source       string              `json:"source"`
		AppliedAt    time.Time           `json:"applied_at"`
		LastRejected *snapshot.Rejection `json:"last_rejected"`
		Config       json.RawMessage     `json:"config"`
	}{s.Config.Version, s.Source, s.AppliedAt, rt.store.LastRejected(), s.Doc})
}

type upstreamStatus struct {
	Endpoint string `json:"endpoint"`
	Health   string `json:"health"`
	Circuit  string `json:"circuit"`
	Inflight int64  `json:"inflight"`
}

func (rt *Router) serveDebugUpstreams(w http.ResponseWriter, _ *http.Request) {
	s := rt.store.Current()
	out := make(map[string]upstreamStatus, len(s.Placements))
	for _, p := range s.Placements {
		out[p.Name] = upstreamStatus{Endpoint: p.Endpoint, Health: p.Health.Status(), Circuit: p.CircuitState().String(), Inflight: p.Concurrency.InFlight()}
	}
	writeJSON(w, map[string]any{"placements": out})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
