package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

func syntheticRun(target string, base time.Duration, version bool) Run {
	var recs []metrics.Record
	for i := 0; i < 3000; i++ {
		r := metrics.Record{Start: time.Duration(i) * time.Millisecond, Latency: base + time.Duration(i%100)*10*time.Microsecond, Code: 200, Served: "tier1"}
		if i%500 == 499 {
			r.Code = 503
		}
		if version {
			r.Version = "v0"
			if i >= 1200 {
				r.Version = "v1"
			}
		}
		recs = append(recs, r)
	}
	run := Run{Target: target, DurationMs: 3000, Summary: metrics.Summarize(recs, 3*time.Second),
		Timeline: metrics.Timeline(recs, 3*time.Second), Expected: map[string]string{"acme": "tier1"}, BootstrapVersion: "v0"}
	if version {
		v := metrics.VersionVisibility(recs, map[string]int{"v0": 0, "v1": 1}, "v1", time.Second)
		run.Actions = []Action{{AtMs: 1000, Kind: scenario.ActionConfigWrite, Detail: "version v1", Version: "v1", Visibility: &v}}
		run.Phases = []metrics.Phase{metrics.PhaseOf("before any chaos", recs, 0, time.Second), metrics.PhaseOf("tier1 reset", recs, time.Second, 3*time.Second)}
	}
	if target != TargetDirect {
		run.Router = &ProcStats{CPUSeconds: 0.3, CPUPerKReqMs: 100, Utilization: 0.1, MaxRSSMiB: 12}
	}
	return run
}

func syntheticResults() *Results {
	r := &Results{StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FinishedAt: time.Date(2026, 1, 2, 3, 9, 5, 0, time.UTC),
		Machine: Machine{CPUModel: "test CPU", Cores: 2}, Budget: Budget{RouterCPUs: "1", GeneratorCPUs: "0", RouterWorkers: 1}, DurationScale: 1,
		Parity: []ParityResult{{Router: "go", Pass: 10}, {Router: "pingora", Pass: 9, Fail: 1, Failed: []string{"TestX/y"}}}}
	steady := ScenarioResult{Name: "steady", Question: "q?", Config: "config/examples/demo.json", SLO: scenario.SLO{MinSuccess: 0.99, MaxP99Ms: 5}, Scale: 1, HasTimeline: true}
	capacity := ScenarioResult{Name: "cap", Question: "how much?", Config: "inline", SLO: scenario.SLO{MinSuccess: 0.999, MaxP99Ms: 25}, Scale: 1, Capacity: true}
	for i, t := range AllTargets {
		steady.Runs = append(steady.Runs, syntheticRun(t, time.Duration(i+1)*100*time.Microsecond, t != TargetDirect))
		run := Run{Target: t}
		for j, rate := range []int{1000, 2000, 4000} {
			sustained := j < 2-i%2
			st := Step{Rate: rate, Sustained: sustained, Summary: metrics.Summary{Requests: rate, Successes: rate, SuccessRate: 1, Throughput: float64(rate), Latency: metrics.Latency{P50: 1, P99: float64(5 * (j + 1)), Count: rate}}}
			run.Steps = append(run.Steps, st)
			if sustained {
				run.MaxSustainedRPS = rate
			}
		}
		capacity.Runs = append(capacity.Runs, run)
	}
	r.Scenarios = []ScenarioResult{steady, capacity}
	return r
}

func TestRenderWritesReportAndValidCharts(t *testing.T) {
	dir := t.TempDir()
	res := syntheticResults()
	if err := WriteJSON(dir, res); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Render(dir, back); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Summary", "## steady", "## cap", "**Question.** q?", "**Reading.**",
		"| cap | max sustained rate (req/s) | 2000 | 1000 | 2000 |",
		"TestX/y", "router under test on CPU(s) **1** with `--workers 1`",
		"first seen +", "![steady-latency.png](steady-latency.png)",
		"![cap-capacity.png](cap-capacity.png)", "![steady-versions.png](steady-versions.png)",
		"reached the direct baseline's ceiling",
		"go sustained at least 2.00× pingora's rate",
		"pingora stopped below the generator's ceiling",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	charts, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(charts) < 6 {
		t.Fatalf("charts: %v", charts)
	}
	for _, c := range charts {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", c, err)
		}
		if img.Bounds().Dx() < 300 || img.Bounds().Dy() < 150 {
			t.Fatalf("%s: %v", c, img.Bounds())
		}
		if !strings.Contains(string(md), "("+filepath.Base(c)+")") {
			t.Errorf("%s is not linked from report.md", filepath.Base(c))
		}
	}
}

func TestReadingNamesTheLowerP99(t *testing.T) {
	res := syntheticResults()
	s := &res.Scenarios[0]
	if got := reading(s); !strings.HasPrefix(got, "go: 6 non-2xx of 3000") {
		t.Fatalf("failure reading: %s", got)
	}
	for i := range s.Runs {
		s.Runs[i].Phases = nil
	}
	// go has the lowest base latency in the synthetic runs.
	if got := reading(s); !strings.HasPrefix(got, "Go has the lower p99") {
		t.Fatalf("latency reading: %s", got)
	}
}
