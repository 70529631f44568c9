package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellbench/harness/report"
	"cellbench/harness/report/schemacheck"
	"cellbench/harness/scenario"
	"cellbench/internal/testkit"
)

// TestSmokeRuns builds the Go router and the mock backends, runs short
// routing scenario (100 req/s for 1 s) against the Go router and the direct
// baseline with real processes, and renders the report.
func TestSmokeRuns(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Fatalf("taskset is required by the harness: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinaries(t, "go-router", "mockbackends")
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		root: root, goRouter: filepath.Join(bin, "go-router"), mockbackends: filepath.Join(bin, "mockbackends"),
		routerCPUs: online.String(), generatorCPUs: online.String(), allCPUs: online.String(), cores: len(online),
		workers: 1, scale: 1, log: t.Logf, routerCores: float64(len(online)), generatorCores: len(online), rounds: 1,
		nginx: nginxBinary(""),
	}
	t.Cleanup(stopAll)
	smokeRouting(t, e, "")
	smokeRouting(t, e, scenario.EngineVegeta)
	smokeCapacity(t, e)
	smokeStarvedGenerator(t, e)
}

// smokeRouting runs a short routing scenario with a config rewrite on one
// engine against both Go engines and the direct baseline, and renders it.
func smokeRouting(t *testing.T, e *env, engine string) {
	t.Helper()
	doc := `{
	  "name": "smoke", "question": "does a run work end to end?",
	  "config": "config/examples/demo.json", "access_log": "file",
	  "targets": [
	    {"routing_key": "acme", "method": "GET", "path": "/a", "weight": 1},
	    {"routing_key": "visa", "method": "POST", "path": "/b", "body_bytes": 64, "weight": 1},
	    {"routing_key": "nobody", "method": "GET", "path": "/c", "weight": 2}
	  ],
	  "rate": 100, "duration_ms": 1000, ENGINE
	  "timeline": [{"at_ms": 300, "action": "config_write", "version": "smoke-2"}],
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`
	if engine != "" {
		doc = strings.Replace(doc, "ENGINE", `"engine": "`+engine+`",`, 1)
	} else {
		doc = strings.Replace(doc, "ENGINE", "", 1)
	}
	sc, err := scenario.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := &report.Results{Budget: report.Budget{RouterCPUs: e.routerCPUs, GeneratorCPUs: e.generatorCPUs, RouterWorkers: 1, RouterCores: e.routerCores}, DurationScale: 1, Rounds: 1}
	sr := report.ScenarioResult{Name: sc.Name, Question: sc.Question, Config: sc.Config, SLO: sc.SLO, Scale: 1, HasTimeline: true}
	for _, target := range []string{report.TargetNginx, report.TargetDirect} {
		if why := e.notApplicable(sc, target); why == "" {
			t.Fatalf("%s applies to a scenario with a config rewrite", target)
		}
	}
	for _, target := range []string{report.TargetGo, report.TargetGoTuned} {
		run := runScenario(ctx, e, sc, target, filepath.Join(out, "runs", target))
		run.Round = 1
		if run.Error != "" {
			t.Fatalf("%s: %s", target, run.Error)
		}
		s := run.Summary
		// 100 req/s for 1 s: the pacer sends 100 (±1 at the edges).
		if s.Requests < 95 || s.Requests > 105 || s.SuccessRate != 1 {
			t.Fatalf("%s: %d requests, success %v, codes %v, errors %v", target, s.Requests, s.SuccessRate, s.Codes, s.TopErrors)
		}
		if run.Misrouted != 0 || s.Served["tier1"] == 0 || s.Served["visa"] == 0 || s.Served["tier3"] == 0 {
			t.Fatalf("%s: misrouted %d, served %v", target, run.Misrouted, s.Served)
		}
		if len(run.Actions) != 1 {
			t.Fatalf("%s: actions %+v", target, run.Actions)
		}
		a := run.Actions[0]
		if run.Router == nil || run.Router.CPUSeconds <= 0 {
			t.Fatalf("router stats %+v", run.Router)
		}
		if a.Visibility == nil || a.Visibility.FirstSeenMs < 0 || a.Visibility.FirstSeenMs > 1000 {
			t.Fatalf("version smoke-2 not seen within 1 s: %+v", a.Visibility)
		}
		if log, err := os.ReadFile(filepath.Join(out, "runs", target, "access.log")); err != nil || !strings.Contains(string(log), `"msg":"request"`) {
			t.Fatalf("access log: %v %.200s", err, log)
		}
		if run.Generator == nil || run.Generator.CPUSeconds <= 0 {
			t.Fatalf("%s: generator stats %+v", target, run.Generator)
		}
		sr.Runs = append(sr.Runs, run)
	}
	for _, target := range []string{report.TargetNginx, report.TargetDirect} {
		sr.Runs = append(sr.Runs, report.Run{Target: target, Round: 1, NotApplicable: e.notApplicable(sc, target)})
	}
	report.Aggregate(&sr, res.Budget)
	res.Scenarios = append(res.Scenarios, sr)
	if err := report.Render(out, res); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "smoke-latency.png")); err != nil {
		t.Fatal(err)
	}
	// The results of real runs are what docs/results.schema.json describes.
	if err := report.WriteJSON(out, res); err != nil {
		t.Fatal(err)
	}
	resultsJSON, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := schemacheck.Validate("../docs/results.schema.json", resultsJSON); err != nil {
		t.Fatalf("results.json of real runs against docs/results.schema.json: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "not applicable") {
		t.Fatalf("report does not say nginx is not applicable")
	}
	children.Lock()
	live := 0
	for p := range children.live {
		if !p.Exited() { // an exited one may not have been removed yet
			live++
		}
	}
	children.Unlock()
	if live != 0 {
		t.Fatalf("%d processes still running after the runs", live)
	}
}

func TestCPUList(t *testing.T) {
	s, err := parseCPUList("0,2-3,2")
	if err != nil || s.String() != "0,2,3" {
		t.Fatalf("%v %v", s, err)
	}
	if got := s.minus(cpuSet{2}).String(); got != "0,3" {
		t.Fatalf("minus: %s", got)
	}
	for _, bad := range []string{"", "a", "3-1", "-1"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestErrorClassDropsTheURL(t *testing.T) {
	got := errorClass(`Post "http://127.0.0.1:5555/api#t=2": dial tcp 127.0.0.1:5555: connect: connection refused`)
	if got != "dial tcp 127.0.0.1:5555: connect: connection refused" {
		t.Fatalf("%q", got)
	}
	got = errorClass(`Get "http://127.0.0.1:1/x": read tcp 127.0.0.1:40000->127.0.0.1:1: read: connection reset by peer`)
	if got != "read tcp: read: connection reset by peer" {
		t.Fatalf("%q", got)
	}
}

// smokeCapacity runs a tiny staircase against the tuned Go router and the
// direct baseline: the probe, the steps, CPU of all three parties, a bound.
func smokeCapacity(t *testing.T, e *env) {
	t.Helper()
	sc, err := scenario.Parse([]byte(`{
	  "name": "smoke_capacity", "question": "does a staircase work end to end?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [{"routing_key": "globex", "method": "GET", "path": "/a", "weight": 1}],
	  "steps": {"rates": [200], "fractions": [0.1, 0.2], "probe_ms": 300, "probe_conns": 4, "conns": 16, "step_ms": 300, "pause_ms": 50},
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, target := range []string{report.TargetGoTuned, report.TargetDirect} {
		run := runScenario(ctx, e, sc, target, filepath.Join(t.TempDir(), target))
		if run.Error != "" {
			t.Fatalf("%s: %s", target, run.Error)
		}
		if run.ProbeRPS <= 0 || len(run.Steps) == 0 || run.Steps[0].Rate != 200 || run.Bound == "" {
			t.Fatalf("%s: probe %.0f, steps %+v, bound %q", target, run.ProbeRPS, run.Steps, run.Bound)
		}
		st := run.Steps[0]
		if st.Generator == nil || st.Cells == nil || st.Summary.Requests != 60 {
			t.Fatalf("%s: first step %+v", target, st)
		}
		if (target == report.TargetDirect) != (st.Router == nil) {
			t.Fatalf("%s: router stats %+v", target, st.Router)
		}
		if target == report.TargetDirect && run.Bound != report.BoundGenerator && run.Bound != report.BoundNotReached {
			t.Fatalf("direct bound %q: only the generator can bind a run without a proxy", run.Bound)
		}
	}
}

// smokeStarvedGenerator starves the generator of CPU (one P, a goroutine
// that never blocks) during a direct run: the run must come out invalid.
func smokeStarvedGenerator(t *testing.T, e *env) {
	t.Helper()
	sc, err := scenario.Parse([]byte(`{
	  "name": "starved", "question": "is a starved generator caught?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [{"routing_key": "globex", "method": "GET", "path": "/a", "weight": 1}],
	  "rate": 2000, "duration_ms": 500,
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer testkit.StarveScheduler()()
	run := runScenario(ctx, e, sc, report.TargetDirect, filepath.Join(t.TempDir(), "direct"))
	if run.Error != "" {
		t.Fatal(run.Error)
	}
	if run.Invalid == "" || run.Summary.GeneratorKeptUp() {
		t.Fatalf("starved generator not caught: %.2f %% late sends", 100*run.Summary.LateFraction)
	}
}
