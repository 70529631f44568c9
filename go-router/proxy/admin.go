package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"
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
		writeJSON(w, map[string]string{"router": RouterName, "engine": string(rt.engine)})
	})
	mux.Handle("GET /metrics", rt.metrics.handler())
	// Profiles on the admin listener (loopback by default) are how the
	// request path was tuned; an operator gets the same view in production.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func (rt *Router) serveDebugConfig(w http.ResponseWriter, _ *http.Request) {
	s := rt.current.Load()
	writeJSON(w, struct {
		Version      string          `json:"version"`
		Source       string          `json:"source"`
		AppliedAt    time.Time       `json:"applied_at"`
		LastRejected *rejection      `json:"last_rejected"`
		Config       json.RawMessage `json:"config"`
	}{s.cfg.Version, s.source, s.appliedAt, rt.lastRejected.Load(), s.doc})
}

type upstreamStatus struct {
	Endpoint string `json:"endpoint"`
	Health   string `json:"health"`
	Circuit  string `json:"circuit"`
	Inflight int64  `json:"inflight"`
}

func (rt *Router) serveDebugUpstreams(w http.ResponseWriter, _ *http.Request) {
	s := rt.current.Load()
	out := make(map[string]upstreamStatus, len(s.placements))
	for _, p := range s.placements {
		out[p.name] = upstreamStatus{Endpoint: p.endpoint, Health: p.health.status(), Circuit: p.circuitState(), Inflight: p.inflight.Load()}
	}
	writeJSON(w, map[string]any{"placements": out})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
