// Package scenario is the schema of the harness's scenario files
// (scenarios/*.json): what load to send, against which router config, and
// which actions to take at which offsets while the load runs.
//
// Files are decoded strictly (unknown fields, trailing data and wrong types
// are errors) and then validated, so a typo in a scenario fails loudly
// instead of silently benchmarking something else.
package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"cellbench/config"
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

var namePattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// methods the targets may use: those of RFC 9110 §9.3 that carry an ordinary
// request/response exchange (CONNECT and TRACE are not load).
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "OPTIONS": true, "PATCH": true}

// Load reads, decodes and validates one scenario file. root is the
// repository root, against which Config paths are resolved.
func Load(path, root string) (*Scenario, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want := strings.TrimSuffix(filepath.Base(path), ".json"); s.Name != want {
		return nil, fmt.Errorf("%s: name %q must match the file name %q", path, s.Name, want)
	}
	if _, err := s.RouterConfig(root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadDir loads every *.json file of dir, sorted by name.
func LoadDir(dir, root string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no scenario files (*.json) in %s", dir)
	}
	sort.Strings(paths)
	var out []*Scenario
	for _, p := range paths {
		s, err := Load(p, root)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Parse decodes and validates a scenario document (without the checks that
// need the file system).
func Parse(doc []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid scenario: trailing data after the document")
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	return &s, nil
}

func (s *Scenario) validate() error {
	if !namePattern.MatchString(s.Name) {
		return fmt.Errorf("name %q: want 1-64 of [a-z0-9_]", s.Name)
	}
	if strings.TrimSpace(s.Question) == "" {
		return errors.New("question is required")
	}
	if (s.Config == "") == (len(s.ConfigInline) == 0) {
		return errors.New("exactly one of config and config_inline is required")
	}
	if s.Config != "" && (filepath.IsAbs(s.Config) || !strings.HasPrefix(filepath.Clean(s.Config), "config/examples/")) {
		return fmt.Errorf("config %q: must be a relative path under config/examples/", s.Config)
	}
	if len(s.ConfigInline) > 0 {
		if _, err := config.Parse(s.ConfigInline); err != nil {
			return fmt.Errorf("config_inline: %w", err)
		}
	}
	if s.AccessLog != "file" && s.AccessLog != "off" {
		return fmt.Errorf("access_log %q: want \"file\" or \"off\"", s.AccessLog)
	}
	if len(s.Targets) == 0 {
		return errors.New("targets: at least one is required")
	}
	for i, t := range s.Targets {
		if err := t.validate(); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	if err := s.validateLoad(); err != nil {
		return err
	}
	if s.MaxRounds < 0 {
		return errors.New("max_rounds: must not be negative")
	}
	if a := s.SlowHeads; a != nil {
		if s.Steps != nil || s.ClosedLoop() {
			return errors.New("slow_heads runs beside a steady open-loop load")
		}
		if a.Conns < 1 || a.Conns > 20000 || a.ByteIntervalMs < 10 || a.NoFile < 64 || a.NoFile > 1<<20 {
			return fmt.Errorf("slow_heads %+v: want conns 1..20000, byte_interval_ms >= 10, nofile 64..%d", *a, 1<<20)
		}
	}
	if s.SLO.MinSuccess <= 0 || s.SLO.MinSuccess > 1 {
		return fmt.Errorf("slo.min_success %v: want a fraction in (0, 1]", s.SLO.MinSuccess)
	}
	if s.SLO.MaxP99Ms <= 0 {
		return fmt.Errorf("slo.max_p99_ms %v: want > 0", s.SLO.MaxP99Ms)
	}
	for i, a := range s.Timeline {
		if err := s.validateAction(a); err != nil {
			return fmt.Errorf("timeline[%d]: %w", i, err)
		}
		if i > 0 && a.AtMs < s.Timeline[i-1].AtMs {
			return fmt.Errorf("timeline[%d]: at_ms %d is before the previous action's", i, a.AtMs)
		}
	}
	return nil
}

// Bounds that keep one run finite on a shared machine.
const (
	maxRate       = 200_000
	maxDurationMs = 10 * 60 * 1000
	maxBodyBytes  = 16 << 20
)

// maxConns bounds loadgen's connection pool.
const maxConns = 4096

func (s *Scenario) validateLoad() error {
	if s.Steps == nil {
		return s.validateSteady()
	}
	if s.Rate != 0 || s.DurationMs != 0 || s.Engine != "" || s.Conns != 0 {
		return errors.New("steps are exclusive with rate, duration_ms, engine and conns (a staircase always runs on loadgen with steps.conns)")
	}
	if len(s.Timeline) > 0 {
		return errors.New("a steps (capacity) scenario takes no timeline")
	}
	st := s.Steps
	if len(st.Rates)+len(st.Fractions) == 0 {
		return errors.New("steps: at least one rate or fraction is required")
	}
	for i, r := range st.Rates {
		if r < 1 || r > maxRate {
			return fmt.Errorf("steps.rates[%d] %d: want 1..%d", i, r, maxRate)
		}
		if i > 0 && r <= st.Rates[i-1] {
			return fmt.Errorf("steps.rates[%d]: rates must increase", i)
		}
	}
	for i, f := range st.Fractions {
		if f <= 0 || f > 4 {
			return fmt.Errorf("steps.fractions[%d] %v: want a factor in (0, 4] of the probe's throughput", i, f)
		}
		if i > 0 && f <= st.Fractions[i-1] {
			return fmt.Errorf("steps.fractions[%d]: fractions must increase", i)
		}
	}
	if st.ProbeMs < 100 || st.ProbeMs > maxDurationMs {
		return fmt.Errorf("steps.probe_ms %d: want 100..%d", st.ProbeMs, maxDurationMs)
	}
	if st.ProbeConns < 1 || st.ProbeConns > maxConns || st.Conns < 1 || st.Conns > maxConns {
		return fmt.Errorf("steps.probe_conns %d, steps.conns %d: want 1..%d", st.ProbeConns, st.Conns, maxConns)
	}
	n := len(st.Rates) + len(st.Fractions)
	if st.StepMs < 100 || st.StepMs*n > maxDurationMs {
		return fmt.Errorf("steps.step_ms %d: want >= 100 and a total under %d ms", st.StepMs, maxDurationMs)
	}
	if st.PauseMs < 0 {
		return errors.New("steps.pause_ms: must not be negative")
	}
	if st.Refine < 0 || st.Refine > 6 {
		return fmt.Errorf("steps.refine %d: want 0..6 bisections", st.Refine)
	}
	return nil
}

func (s *Scenario) validateSteady() error {
	if s.DurationMs < 100 || s.DurationMs > maxDurationMs {
		return fmt.Errorf("duration_ms %d: want 100..%d", s.DurationMs, maxDurationMs)
	}
	if s.Rate < 0 || s.Rate > maxRate {
		return fmt.Errorf("rate %d: want 1..%d req/s (or steps, or no rate for a closed loop)", s.Rate, maxRate)
	}
	switch s.Engine {
	case "", EngineLoadgen:
		if s.Conns < 0 || s.Conns > maxConns {
			return fmt.Errorf("conns %d: want 1..%d connections (0: %d)", s.Conns, maxConns, DefaultConns)
		}
		if s.Rate == 0 && s.Conns == 0 {
			return errors.New("a closed-loop run (no rate) needs conns")
		}
	case EngineVegeta:
		if s.Rate == 0 {
			return errors.New("engine vegeta is open loop: it needs a rate")
		}
		if s.Conns != 0 {
			return errors.New("conns is loadgen's; vegeta sizes its own worker pool")
		}
	default:
		return fmt.Errorf("engine %q: want loadgen or vegeta", s.Engine)
	}
	if s.Rate == 0 && len(s.Timeline) > 0 {
		return errors.New("a closed-loop run takes no timeline (its request times are not a schedule)")
	}
	return nil
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

func (t Target) validate() error {
	if t.RoutingKey == "" {
		return errors.New("routing_key is required")
	}
	if !methods[t.Method] {
		return fmt.Errorf("method %q: want one of GET HEAD POST PUT DELETE OPTIONS PATCH", t.Method)
	}
	if !strings.HasPrefix(t.Path, "/") || strings.Contains(t.Path, "#") {
		return fmt.Errorf("path %q: want an origin-form path starting with / and no fragment", t.Path)
	}
	if t.BodyBytes < 0 || t.BodyBytes > maxBodyBytes {
		return fmt.Errorf("body_bytes %d: want 0..%d", t.BodyBytes, maxBodyBytes)
	}
	if t.Weight < 1 {
		return fmt.Errorf("weight %d: want >= 1", t.Weight)
	}
	for k := range t.Headers {
		if strings.EqualFold(k, "X-Routing-Key") || strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") {
			return fmt.Errorf("headers: %s is set by the harness", k)
		}
	}
	return nil
}

func (s *Scenario) validateAction(a Action) error {
	if a.AtMs < 0 || (s.Steps == nil && a.AtMs >= s.DurationMs) {
		return fmt.Errorf("at_ms %d: want 0..duration_ms-1", a.AtMs)
	}
	needCell := a.Kind == ActionChaos || a.Kind == ActionChaosReset
	if needCell != (a.Cell != "") {
		return fmt.Errorf("action %q: cell is for chaos and chaos_reset only, and required there", a.Kind)
	}
	if (a.Kind == ActionChaos) != (len(a.Chaos) > 0) {
		return fmt.Errorf("action %q: chaos is for the chaos action only, and required there", a.Kind)
	}
	needVersion := a.Kind == ActionConfigWrite || a.Kind == ActionCPPut
	if needVersion != (a.Version != "") {
		return fmt.Errorf("action %q: version is for config_write and cp_put only, and required there", a.Kind)
	}
	if a.Invalid && a.Kind != ActionConfigWrite {
		return fmt.Errorf("action %q: invalid is for config_write only", a.Kind)
	}
	switch a.Kind {
	case ActionChaos, ActionChaosReset, ActionConfigWrite:
	case ActionCPPut, ActionCPKill, ActionCPStart:
		if !s.ControlPlane {
			return fmt.Errorf("action %q needs control_plane: true", a.Kind)
		}
	default:
		return fmt.Errorf("action %q: want chaos, chaos_reset, config_write, cp_put, cp_kill or cp_start", a.Kind)
	}
	if a.Kind == ActionConfigWrite && s.ControlPlane {
		return errors.New("config_write with control_plane: the file is only the bootstrap; use cp_put")
	}
	return nil
}

// RouterConfig returns the scenario's router config document, parsed and
// validated with the routers' own rules.
func (s *Scenario) RouterConfig(root string) (*config.Config, error) {
	doc := []byte(s.ConfigInline)
	if s.Config != "" {
		var err error
		if doc, err = os.ReadFile(filepath.Join(root, s.Config)); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	cfg, err := config.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
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
