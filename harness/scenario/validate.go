package scenario

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"cellbench/config"
)

var namePattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// methods the targets may use: those of RFC 9110 §9.3 that carry an ordinary
// request/response exchange (CONNECT and TRACE are not load).
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "OPTIONS": true, "PATCH": true}

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
