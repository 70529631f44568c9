// Package scenario is the schema of the harness's scenario files
// (scenarios/*.json): what load to send, against which router config, and
// which actions to take at which offsets while the load runs.
//
// Files are decoded strictly (unknown fields, trailing data and wrong types
// are errors) and then validated, so a typo in a scenario fails loudly
// instead of silently benchmarking something else.
package scenario

import (
	"encoding/json"
	"fmt"
	"time"
)

// Scenario is one scenario file.
type Scenario struct {
	// Name identifies the scenario (--only, report sections); it must match
	// the file name without ".json".
	Name string `json:"name"`
	// Question is what the scenario answers, shown at the top of its section.
	Question string `json:"question"`
	// Config is a path (relative to the repository root, under
	// config/examples/) of the router config; ConfigInline is the document
	// itself. Exactly one of the two is set.
	Config       string          `json:"config,omitempty"`
	ConfigInline json.RawMessage `json:"config_inline,omitempty"`
	// AccessLog is "file" (a file in the run directory) or "off".
	AccessLog string `json:"access_log"`
	// ControlPlane runs the router with the control plane as its config source.
	ControlPlane bool `json:"control_plane,omitempty"`
	// Targets are the request shapes, sent round-robin by weight.
	Targets []Target `json:"targets"`
	// Rate (req/s) and DurationMs describe a steady open-loop run;
	// DurationMs without Rate a closed-loop run (engine loadgen, Conns
	// connections each sending its next request when the last is
	// answered); Steps a capacity staircase. Exactly one of the forms is
	// used.
	Rate       int    `json:"rate,omitempty"`
	DurationMs int    `json:"duration_ms,omitempty"`
	Steps      *Steps `json:"steps,omitempty"`
	// Engine is the load generator: "loadgen" (the default: the harness's
	// raw HTTP/1.1 generator, harness/loadgen) or "vegeta" (vegeta's
	// attacker, open loop only). Both measure latency from each request's
	// scheduled send time. Capacity staircases always use loadgen.
	Engine string `json:"engine,omitempty"`
	// Conns is loadgen's connection pool (the most requests in flight);
	// DefaultConns when unset.
	Conns int `json:"conns,omitempty"`
	// FixedTiming keeps DurationMs and the timeline as written whatever
	// --duration-scale says: a scenario whose phases depend on the routers'
	// own clocks (health-check intervals, breaker open time) means nothing
	// when its phases are shorter than those clocks.
	FixedTiming bool `json:"fixed_timing,omitempty"`
	// SlowHeads runs a slow-head attack beside the load (the load is then
	// the well-behaved client whose answers count).
	SlowHeads *SlowHeads `json:"slow_heads,omitempty"`
	// OptIn scenarios run only when --only names them (a soak is longer
	// than a whole default compare).
	OptIn bool `json:"opt_in,omitempty"`
	// MaxRounds caps --rounds for this scenario (0: no cap). For a
	// scenario whose figures are event times on the routers' own clocks
	// (health-check intervals, breaker open time) rather than rates, more
	// rounds repeat the same clock ticks at the cost of minutes each.
	MaxRounds int `json:"max_rounds,omitempty"`
	// Timeline holds the actions to take while the load runs.
	Timeline []Action `json:"timeline,omitempty"`
	// SLO is what the one-line reading checks.
	SLO SLO `json:"slo"`
}

// Target is one request shape.
type Target struct {
	RoutingKey string            `json:"routing_key"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Headers    map[string]string `json:"headers,omitempty"`
	BodyBytes  int               `json:"body_bytes,omitempty"`
	Weight     int               `json:"weight"`
}

// Steps is an open-loop capacity staircase run by loadgen. A closed-loop
// probe of ProbeMs with ProbeConns connections first finds the target's
// saturated throughput X; then come the fixed Rates, then Fractions of X,
// each for StepMs with PauseMs between, stopping after the first step that
// is not sustained. Placing the steps relative to each target's own X
// gives every target the same resolution near its ceiling in the same
// time.
type Steps struct {
	Rates      []int     `json:"rates,omitempty"`
	Fractions  []float64 `json:"fractions"`
	ProbeMs    int       `json:"probe_ms"`
	ProbeConns int       `json:"probe_conns"`
	// Refine bisects that many times between the highest sustained step
	// and the first failed one.
	Refine int `json:"refine,omitempty"`
	// Conns is the open-loop steps' connection pool.
	Conns   int `json:"conns"`
	StepMs  int `json:"step_ms"`
	PauseMs int `json:"pause_ms"`
}

// SlowHeads is a slow-head ("slowloris") attack: Conns connections that
// send a request head one byte every ByteIntervalMs and never finish it,
// against a proxy whose descriptor limit (RLIMIT_NOFILE) is NoFile, so the
// attack is beyond what the proxy can hold open.
type SlowHeads struct {
	Conns          int `json:"conns"`
	ByteIntervalMs int `json:"byte_interval_ms"`
	NoFile         int `json:"nofile"`
}

// Load engines.
const (
	EngineVegeta  = "vegeta"
	EngineLoadgen = "loadgen"
)

// ClosedLoop reports whether the scenario is a closed-loop run.
func (s *Scenario) ClosedLoop() bool { return s.Steps == nil && s.Rate == 0 }

// UsesVegeta reports whether vegeta (not loadgen) generates the load.
func (s *Scenario) UsesVegeta() bool { return s.Engine == EngineVegeta }

// SLO bounds a run (or each capacity step).
type SLO struct {
	MinSuccess float64 `json:"min_success"`
	MaxP99Ms   float64 `json:"max_p99_ms"`
}

// Misses is the harness's one SLO judgement (capacity steps, readings and
// reports ask it): what a run with this success rate and p99 missed, e.g.
// "success 99.800 % < 99.900 %" and "p99 26.00 ms > 25 ms"; none when it
// met the SLO.
func (s SLO) Misses(success, p99Ms float64) []string {
	var why []string
	if success < s.MinSuccess {
		why = append(why, fmt.Sprintf("success %.3f %% < %.3f %%", 100*success, 100*s.MinSuccess))
	}
	if p99Ms > s.MaxP99Ms {
		why = append(why, fmt.Sprintf("p99 %.2f ms > %g ms", p99Ms, s.MaxP99Ms))
	}
	return why
}

// DefaultConns is loadgen's pool for a steady open-loop run without conns.
const DefaultConns = 64

// Connections is the loadgen pool of a steady run.
func (s *Scenario) Connections() int {
	if s.Conns == 0 {
		return DefaultConns
	}
	return s.Conns
}

// Duration is the scaled length of the load (all steps and pauses for a
// capacity scenario).
func (s *Scenario) Duration(scale float64) time.Duration {
	if s.FixedTiming {
		scale = 1
	}
	if st := s.Steps; st != nil {
		n := len(st.Rates) + len(st.Fractions) + st.Refine
		return time.Duration(float64(st.ProbeMs+n*st.StepMs+n*st.PauseMs)*scale) * time.Millisecond
	}
	return time.Duration(float64(s.DurationMs)*scale) * time.Millisecond
}

// Rounds is how many of the requested rounds the scenario runs.
func (s *Scenario) Rounds(requested int) int {
	if s.MaxRounds > 0 {
		return min(requested, s.MaxRounds)
	}
	return requested
}

// Scale is the factor that applies to this scenario's durations.
func (s *Scenario) Scale(scale float64) float64 {
	if s.FixedTiming {
		return 1
	}
	return scale
}
