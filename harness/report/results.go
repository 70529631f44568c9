// Package report holds the results of a `harness compare` run
// (results.json) and renders them: report.md and PNG charts. A report can be
// re-rendered from results.json alone (`harness report DIR`).
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

// Targets, in the order every table and chart shows them: the Go router on
// the standard library's HTTP engine, the Go router on its tuned engine, the
// least a Go proxy does (go-router/bench/floorproxy), the Pingora router,
// the least a Pingora proxy does (pingora-router/examples/floor.rs), nginx
// as the anchor, and the cells without a proxy.
const (
	TargetGo           = "go"
	TargetGoTuned      = "go-tuned"
	TargetGoFloor      = "go-floor"
	TargetPingora      = "pingora"
	TargetPingoraFloor = "pingora-floor"
	TargetNginx        = "nginx"
	TargetDirect       = "direct"
)

// AllTargets is the order of targets in tables and charts.
var AllTargets = []string{TargetGo, TargetGoTuned, TargetGoFloor, TargetPingora, TargetPingoraFloor, TargetNginx, TargetDirect}

// IsFloor reports whether target is a framework floor (one fixed peer, no
// features): it runs only where every request goes to one placement.
func IsFloor(target string) bool { return target == TargetGoFloor || target == TargetPingoraFloor }

// Routers are the targets that implement the contract.
var Routers = []string{TargetGo, TargetGoTuned, TargetPingora}

// Bounds of a capacity result: what stopped the staircase.
const (
	// BoundRouter: the proxy used its CPU budget while the generator kept
	// its schedule with CPU to spare.
	BoundRouter = "router"
	// BoundGenerator: the generator fell behind its schedule or its CPUs
	// were saturated; the figure is a floor of the proxy's capacity, never
	// a verdict. The direct baseline is always generator-bound.
	BoundGenerator = "generator"
	// BoundUnclear: the step failed its SLO with neither side saturated.
	BoundUnclear = "unclear"
	// BoundNotReached: every step was sustained.
	BoundNotReached = "not reached"
)

// SchemaVersion is the version of results.json's layout
// (docs/results.schema.json). It changes when a field is removed or
// renamed or changes its meaning; a field added keeps it (readers ignore
// fields they do not know).
const SchemaVersion = 1

// Results is everything one compare run measured.
type Results struct {
	// SchemaVersion is the layout's version (SchemaVersion); 0 in files
	// written before it was recorded.
	SchemaVersion int              `json:"schema_version"`
	StartedAt     time.Time        `json:"started_at"`
	FinishedAt    time.Time        `json:"finished_at"`
	Machine       Machine          `json:"machine"`
	Budget        Budget           `json:"cpu_budget"`
	DurationScale float64          `json:"duration_scale"`
	Rounds        int              `json:"rounds"`
	Quick         bool             `json:"quick,omitempty"`
	Scenarios     []ScenarioResult `json:"scenarios"`
	Parity        []ParityResult   `json:"parity,omitempty"`
	ParitySkipped bool             `json:"parity_skipped"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
	RustVersion string `json:"rust_version"`
	GitCommit   string `json:"git_commit"`
	GitDirty    bool   `json:"git_dirty"`
}

// Budget is the CPU split between the proxy under test and the rest.
type Budget struct {
	RouterCPUs    string `json:"router_cpus"`
	GeneratorCPUs string `json:"generator_cpus"`
	// RouterWorkers is the proxies' --workers; 0 for routers the harness
	// did not start (compare --target, merge), whose own settings hold.
	RouterWorkers int `json:"router_workers"`
	// RouterCPUQuota is the CFS quota of every proxy in cores (0: none,
	// the proxy may use all of RouterCPUs); RouterCores is what the proxy
	// may use, the divisor of its utilisation.
	RouterCPUQuota float64 `json:"router_cpu_quota"`
	RouterCores    float64 `json:"router_cores"`
	// TargetCPUQuota is a target's own quota in cores, where one was set
	// to slow it deliberately (--target-cpu-quota); its per-core figures
	// divide by it.
	TargetCPUQuota map[string]float64 `json:"target_cpu_quota,omitempty"`
}

// CoresOf is the CPU budget of target in cores.
func (b Budget) CoresOf(target string) float64 {
	if c, ok := b.TargetCPUQuota[target]; ok {
		return c
	}
	return b.RouterCores
}

// ScenarioResult is one scenario against every target.
type ScenarioResult struct {
	Name     string `json:"name"`
	Question string `json:"question"`
	Config   string `json:"config"`
	// Load describes the load: rate and duration, or the staircase.
	Load         string       `json:"load"`
	AccessLog    string       `json:"access_log"`
	ControlPlane bool         `json:"control_plane"`
	SLO          scenario.SLO `json:"slo"`
	// Scale is the duration scale that applied (1 for fixed-timing scenarios).
	Scale       float64 `json:"scale"`
	Capacity    bool    `json:"capacity"`
	HasTimeline bool    `json:"has_timeline"`
	// SlowHeads is the scenario's slow-head attack, if any.
	SlowHeads *scenario.SlowHeads `json:"slow_heads,omitempty"`
	// Runs holds every round of every target, in the order they ran.
	Runs []Run `json:"runs"`
	// Headline is each target's figures over the rounds and Verdicts what
	// they say (computed from Runs; `harness report` recomputes them).
	Headline []Headline `json:"headline"`
	Verdicts []Verdict  `json:"verdicts"`
}

// Run is one scenario against one target.
type Run struct {
	Target string `json:"target"`
	// Round counts from 1; NotApplicable says why the target has no run
	// in this scenario (nginx has no config reload, control plane or
	// fallbacks).
	Round         int    `json:"round"`
	NotApplicable string `json:"not_applicable,omitempty"`
	// Invalid says why the run's numbers must not be used for a verdict:
	// the generator sent more than 1 % of its requests over 1 ms late.
	Invalid string `json:"invalid,omitempty"`
	// Error is why the run could not be completed (the numbers are then
	// partial or absent).
	Error      string           `json:"error,omitempty"`
	DurationMs float64          `json:"duration_ms"`
	Summary    metrics.Summary  `json:"summary"`
	Timeline   []metrics.Second `json:"timeline"`
	// Expected maps each target routing key to the placement the config
	// routes it to; Misrouted counts 2xx answers without failover served by
	// another placement.
	Expected map[string]string `json:"expected_placement"`
	// ExpectedShare is the share of requests each placement should serve
	// without failover, from the target weights and the config's routes.
	ExpectedShare map[string]float64 `json:"expected_share"`
	Misrouted     int                `json:"misrouted"`
	// BootstrapVersion is the config version the router started with.
	BootstrapVersion string `json:"bootstrap_version,omitempty"`
	// Steps and MaxSustainedRPS are set for capacity scenarios.
	// Probe is the closed-loop throughput that placed the steps; Bound
	// what stopped the staircase (BoundRouter and so on), BoundWhy the
	// figures behind it.
	Steps           []Step          `json:"steps,omitempty"`
	ProbeRPS        float64         `json:"probe_rps,omitempty"`
	MaxSustainedRPS int             `json:"max_sustained_rps,omitempty"`
	Bound           string          `json:"bound,omitempty"`
	BoundWhy        string          `json:"bound_why,omitempty"`
	Actions         []Action        `json:"actions,omitempty"`
	Phases          []metrics.Phase `json:"phases,omitempty"`
	Router          *ProcStats      `json:"router,omitempty"`
	// Generator is the harness process (the load generator) and Cells the
	// mock cells, on the generator CPUs.
	Generator *ProcStats `json:"generator,omitempty"`
	Cells     *ProcStats `json:"cells,omitempty"`
	// OtherLoad is CPU used on the machine outside this run while it ran,
	// in cores: other users' work competing with the measurement.
	OtherLoad float64 `json:"other_load_cores"`
	// LongestOutageMs is the longest stretch of scheduled time without a
	// 2xx answer (steady runs).
	LongestOutageMs float64 `json:"longest_outage_ms"`
	// Samples are the proxy's (for direct: the cells') resident memory,
	// open descriptors and threads over the run; Growth their trend after
	// the warm-up share of the run.
	Samples []ProcSample `json:"samples,omitempty"`
	Growth  *Growth      `json:"growth,omitempty"`
	// Attack is what a slow-head attack beside the load did.
	Attack *AttackStats `json:"attack,omitempty"`
	// Attackers are the attackers of a run merged from several
	// (`harness merge`), with their clocks.
	Attackers *Attackers `json:"attackers,omitempty"`
}

// ProcSample is one reading of a process.
type ProcSample struct {
	AtMs    float64 `json:"at_ms"`
	RSSMiB  float64 `json:"rss_mib"`
	FDs     int     `json:"fds"`
	Threads int     `json:"threads"`
}

// Growth is how the samples moved after the warm-up share of a run: RSS
// per minute as a share of the RSS at the end of the warm-up, and
// descriptors and threads from then to the end.
type Growth struct {
	AfterMs          float64 `json:"after_ms"`
	RSSPercentPerMin float64 `json:"rss_percent_per_min"`
	RSSStartMiB      float64 `json:"rss_start_mib"`
	RSSEndMiB        float64 `json:"rss_end_mib"`
	FDsStart         int     `json:"fds_start"`
	FDsEnd           int     `json:"fds_end"`
	ThreadsStart     int     `json:"threads_start"`
	ThreadsEnd       int     `json:"threads_end"`
}

// AttackStats counts a slow-head attack: connections dialled, dials that
// failed, connections the target closed, the most open at once, and the
// target's descriptor limit.
type AttackStats struct {
	Conns          int   `json:"conns"`
	NoFile         int   `json:"nofile"`
	Dials          int64 `json:"dials"`
	DialErrors     int64 `json:"dial_errors"`
	ClosedByServer int64 `json:"closed_by_server"`
	PeakOpen       int64 `json:"peak_open"`
	PeakFDs        int   `json:"peak_fds"`
}

// Step is one rate of a capacity staircase.
type Step struct {
	Rate    int             `json:"rate"`
	Summary metrics.Summary `json:"summary"`
	// Sustained: success and p99 within the SLO and at least 95 % of the
	// offered rate actually sent and answered.
	Sustained bool   `json:"sustained"`
	Why       string `json:"why,omitempty"`
	// Retry marks the repeat of a step that was not sustained the first
	// time.
	Retry     bool       `json:"retry,omitempty"`
	Router    *ProcStats `json:"router,omitempty"`
	Generator *ProcStats `json:"generator,omitempty"`
	Cells     *ProcStats `json:"cells,omitempty"`
	// GeneratorSideBusy is the generator and the cells' CPU use over the
	// generator CPUs (1 = saturated).
	GeneratorSideBusy float64 `json:"generator_side_busy"`
	OtherLoad         float64 `json:"other_load_cores"`
}

// Action is what happened to one timeline action and what it caused.
type Action struct {
	AtMs   float64 `json:"at_ms"`
	Kind   string  `json:"action"`
	Detail string  `json:"detail"`
	Error  string  `json:"error,omitempty"`
	// Version changes: when the new version reached clients. For an
	// invalid document, SeenInvalid counts responses that carried it (must
	// be 0).
	Version     string              `json:"version,omitempty"`
	Invalid     bool                `json:"invalid,omitempty"`
	Visibility  *metrics.Visibility `json:"visibility,omitempty"`
	SeenInvalid int                 `json:"seen_invalid,omitempty"`
	// FailedUntilNext counts non-2xx answers to requests sent between a
	// control-plane kill or start and the next action.
	FailedUntilNext *int `json:"failed_until_next,omitempty"`
	// WindowP99Ms is the p99 of the requests sent in the 500 ms after a
	// config change (its latency impact).
	WindowP99Ms *float64 `json:"window_p99_ms,omitempty"`
	// Chaos: time to the first failover answer after the action, and after a
	// reset the time until the cell serves without failover again (-1: never
	// within the phase).
	FirstFailoverMs *float64 `json:"first_failover_ms,omitempty"`
	FirstErrorMs    *float64 `json:"first_error_ms,omitempty"`
	BackMs          *float64 `json:"back_ms,omitempty"`
}

// ProcStats is the router process's resource use during the measured load.
type ProcStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerKReqMs is router CPU milliseconds per 1000 requests.
	CPUPerKReqMs float64 `json:"cpu_ms_per_1k_requests"`
	// Utilization is CPU seconds per wall second over the router's cores.
	Utilization float64 `json:"utilization"`
	MaxRSSMiB   float64 `json:"max_rss_mib"`
	// ThrottledMs is how long the proxy waited on its CPU quota.
	ThrottledMs float64 `json:"throttled_ms,omitempty"`
}

// CPUPerRequestUs is CPU microseconds per request.
func (p *ProcStats) CPUPerRequestUs() float64 {
	if p == nil {
		return 0
	}
	return p.CPUPerKReqMs
}

// ParityResult is one parity-suite run.
type ParityResult struct {
	Router  string   `json:"router"`
	Binary  string   `json:"binary"`
	Pass    int      `json:"pass"`
	Fail    int      `json:"fail"`
	Skip    int      `json:"skip"`
	Failed  []string `json:"failed,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
	// Divergent are the passing cases that asserted a documented
	// divergence (docs/parity.md) instead of the contract's answer.
	Divergent []string `json:"divergent,omitempty"`
	Error     string   `json:"error,omitempty"`
	DurationS float64  `json:"duration_s"`
}

// Run returns the scenario's first round against target, or nil (also
// when the target does not apply); the detail tables and charts show it.
func (s *ScenarioResult) Run(target string) *Run {
	for i := range s.Runs {
		if s.Runs[i].Target == target && s.Runs[i].NotApplicable == "" {
			return &s.Runs[i]
		}
	}
	return nil
}

// Rounds returns every round against target.
func (s *ScenarioResult) Rounds(target string) []*Run {
	var out []*Run
	for i := range s.Runs {
		if s.Runs[i].Target == target && s.Runs[i].NotApplicable == "" {
			out = append(out, &s.Runs[i])
		}
	}
	return out
}

// NotApplicable is why target has no run in the scenario ("" if it has).
func (s *ScenarioResult) NotApplicable(target string) string {
	for _, r := range s.Runs {
		if r.Target == target && r.NotApplicable != "" {
			return r.NotApplicable
		}
	}
	return ""
}

// WriteJSON writes results.json into dir, in the current schema version.
func WriteJSON(dir string, r *Results) error {
	r.SchemaVersion = SchemaVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// ReadJSON reads path/results.json, or path itself when it is a file.
func ReadJSON(path string) (*Results, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "results.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("%s: schema version %d is newer than this harness's %d", path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}
