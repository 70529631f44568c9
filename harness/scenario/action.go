package scenario

import (
	"encoding/json"
	"time"
)

// Action kinds.
const (
	ActionChaos       = "chaos"        // POST /cells/<cell>/chaos with Chaos
	ActionChaosReset  = "chaos_reset"  // DELETE /cells/<cell>/chaos
	ActionConfigWrite = "config_write" // rewrite the router's config file
	ActionCPPut       = "cp_put"       // PUT /config on the control plane
	ActionCPKill      = "cp_kill"      // SIGKILL the control plane
	ActionCPStart     = "cp_start"     // start the control plane again
)

// Action is one timeline entry. Version (config_write, cp_put) is the
// version the new document carries; Invalid writes a document the routers
// must reject instead (config_write only).
type Action struct {
	AtMs    int             `json:"at_ms"`
	Kind    string          `json:"action"`
	Cell    string          `json:"cell,omitempty"`
	Chaos   json.RawMessage `json:"chaos,omitempty"`
	Version string          `json:"version,omitempty"`
	Invalid bool            `json:"invalid,omitempty"`
}

// ConfigAction reports whether the action changes the router's config
// source (a scenario with one does not apply to the direct baseline).
func (a Action) ConfigAction() bool {
	switch a.Kind {
	case ActionConfigWrite, ActionCPPut, ActionCPKill, ActionCPStart:
		return true
	}
	return false
}

// At is the action's offset after scaling.
func (a Action) At(scale float64) time.Duration {
	return time.Duration(float64(a.AtMs)*scale) * time.Millisecond
}
