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

// syntheticResults has three rounds of every target. Capacity: targets at
// even places in AllTargets (go, go-floor, pingora-floor, direct) sustain
// twice the rate of the others (go-tuned, pingora, nginx); nginx and
// direct are generator-bound.
func syntheticResults() *Results {
	r := &Results{StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FinishedAt: time.Date(2026, 1, 2, 3, 9, 5, 0, time.UTC),
		Machine: Machine{CPUModel: "test CPU", Cores: 2}, Budget: Budget{RouterCPUs: "1", GeneratorCPUs: "0", RouterWorkers: 1, RouterCPUQuota: 0.5, RouterCores: 0.5},
		DurationScale: 1, Rounds: 3,
		Parity: []ParityResult{{Router: "go", Pass: 10}, {Router: "pingora", Pass: 9, Fail: 1, Failed: []string{"TestX/y"}}}}
	steady := ScenarioResult{Name: "steady", Question: "q?", Config: "config/examples/demo.json", SLO: scenario.SLO{MinSuccess: 0.99, MaxP99Ms: 5}, Scale: 1, HasTimeline: true}
	capacity := ScenarioResult{Name: "cap", Question: "how much?", Config: "inline", SLO: scenario.SLO{MinSuccess: 0.999, MaxP99Ms: 25}, Scale: 1, Capacity: true}
	for round := 1; round <= 3; round++ {
		for i, t := range AllTargets {
			run := syntheticRun(t, time.Duration(i+1)*100*time.Microsecond+time.Duration(round)*time.Microsecond, t != TargetDirect)
			run.Round = round
			steady.Runs = append(steady.Runs, run)
			crun := Run{Target: t, Round: round, Bound: BoundRouter, Summary: metrics.Summary{Requests: 1}}
			if t == TargetNginx || t == TargetDirect {
				crun.Bound = BoundGenerator
			}
			for j, base := range []int{1000, 2000, 4000} {
				rate := base + 10*round
				sustained := j < 2-i%2
				st := Step{Rate: rate, Sustained: sustained, Summary: metrics.Summary{Requests: rate, Successes: rate, SuccessRate: 1, Throughput: float64(rate), Latency: metrics.Latency{P50: 1, P99: float64(5 * (j + 1)), Count: rate}}}
				if t != TargetDirect {
					st.Router = &ProcStats{CPUPerKReqMs: float64(20 + i), Utilization: 0.5 * float64(j+1)}
				}
				crun.Steps = append(crun.Steps, st)
				if sustained {
					crun.MaxSustainedRPS = rate
				}
			}
			capacity.Runs = append(capacity.Runs, crun)
		}
	}
	Aggregate(&steady, r.Budget)
	Aggregate(&capacity, r.Budget)
	r.Scenarios = []ScenarioResult{steady, capacity}
	return r
}

func TestVerdictsNeedSeparateRanges(t *testing.T) {
	res := syntheticResults()
	byQuestion := map[string]Verdict{}
	for _, v := range res.Scenarios[1].Verdicts {
		byQuestion[v.Question] = v
	}
	if v := byQuestion["capacity, go-tuned vs pingora"]; v.Winner != "" || !strings.HasPrefix(v.Text, "no clear difference") {
		t.Errorf("equal ranges: %+v", v)
	}
	if v := byQuestion["capacity, go vs pingora"]; v.Winner != TargetGo {
		t.Errorf("go's 2010-2030 against pingora's 1010-1030: %+v", v)
	}
	h := res.Scenarios[1].HeadlineOf(TargetGo)
	if h.CapacityRPS != (metrics.Spread{Median: 2020, Min: 2010, Max: 2030, N: 3}) || h.CapacityPerCore.Median != 4040 || h.Bound != BoundRouter {
		t.Errorf("go headline %+v", h)
	}
	// A generator-bound side gives no verdict, whatever its figures.
	s := &res.Scenarios[1]
	for i := range s.Runs {
		if s.Runs[i].Target == TargetPingora && s.Runs[i].Round == 2 {
			s.Runs[i].Bound = BoundGenerator
		}
	}
	Aggregate(s, res.Budget)
	for _, v := range s.Verdicts {
		if v.Question == "capacity, go vs pingora" && (v.Winner != "" || !strings.Contains(v.Text, "not by the router")) {
			t.Errorf("mixed bound gave a verdict: %+v", v)
		}
	}
	// An invalid round is left out of the figures.
	for i := range s.Runs {
		if s.Runs[i].Target == TargetGo && s.Runs[i].Round == 3 {
			s.Runs[i].Invalid = "late"
		}
	}
	Aggregate(s, res.Budget)
	if h := s.HeadlineOf(TargetGo); h.Valid != 2 || h.Rounds != 3 || h.CapacityRPS.Max != 2020 {
		t.Errorf("invalid round counted: %+v", h)
	}
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
		"## Verdicts", "## Headline figures", "## steady", "## cap", "**Question.** q?", "**Reading.**",
		"| cap | max sustained rate (req/s) | 2020 [2010–2030] | 1020 [1010–1030] | 2020 [2010–2030] | 1020 [1010–1030] | 2020 [2010–2030] | 1020 [1010–1030] | 2020 [2010–2030] |",
		"| cap | bound | router | router | router | router | router | generator | generator |",
		"pingora 23.0 µs = pingora-floor 24.0 + its own",
		"capacity, go vs pingora: **go** higher by 1.98×",
		"capacity, go-tuned vs pingora: no clear difference",
		"p50, go vs pingora: **go** lower by",
		"TestX/y", "on CPU(s) **1** with a CFS quota of **0.50 cores** and `--workers 1`",
		"first seen +", "![steady-latency.png](steady-latency.png)",
		"![cap-capacity.png](cap-capacity.png)", "![steady-versions.png](steady-versions.png)",
		"![cap-capacity-p50.png](cap-capacity-p50.png)", "![cap-capacity-cpu.png](cap-capacity-cpu.png)",
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

func TestReadingDescribesButDoesNotRank(t *testing.T) {
	res := syntheticResults()
	s := &res.Scenarios[0]
	if got := reading(s); !strings.HasPrefix(got, "go: 6 non-2xx of 3000") {
		t.Fatalf("failure reading: %s", got)
	}
	for i := range s.Runs {
		s.Runs[i].Phases = nil
	}
	// A one-round reading names no winner: that is the verdicts' job,
	// over the rounds (issue 9: verdicts came from one run).
	got := reading(s)
	if strings.Contains(got, "lower p99") || !strings.Contains(got, "Direct (no router) p50") {
		t.Fatalf("latency reading: %s", got)
	}
}

func TestLogTicksLabelsWithoutFloatNoise(t *testing.T) {
	for _, tick := range (logTicks{}).Ticks(0.15, 0.9) {
		if tick.Label != "" && len(tick.Label) > 4 {
			t.Errorf("tick %v labelled %q", tick.Value, tick.Label)
		}
	}
}
