package report

import (
	"strings"
	"testing"
)

// slowLatency multiplies every latency figure of target's runs in the
// scenario by f.
func slowLatency(s *ScenarioResult, target string, f float64) {
	for i := range s.Runs {
		if s.Runs[i].Target != target {
			continue
		}
		l := &s.Runs[i].Summary.Latency
		l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max = l.P50*f, l.P90*f, l.P99*f, l.P999*f, l.P9999*f, l.Max*f
	}
}

func TestDiffSameRunsIsNoise(t *testing.T) {
	a, b := syntheticResults(), syntheticResults()
	// Drift within the rounds' ranges is not a difference.
	slowLatency(&b.Scenarios[0], TargetPingora, 1.001)
	d := DiffResults(a, b)
	if len(d.Lines) == 0 {
		t.Fatal("no lines")
	}
	if got := d.Beyond(); len(got) != 0 {
		t.Fatalf("beyond noise: %+v", got)
	}
	if txt := d.Text(); !strings.Contains(txt, "no difference beyond noise") {
		t.Fatalf("text:\n%s", txt)
	}
	// A generator-bound capacity is no figure to compare.
	for _, l := range d.Lines {
		if l.Scenario == "cap" && l.Target == TargetNginx && l.Figure == "capacity" && !strings.Contains(l.Why, "bound by generator") {
			t.Errorf("nginx capacity: %+v", l)
		}
	}
}

func TestDiffNamesTheSlowedRouterAndFigure(t *testing.T) {
	a, b := syntheticResults(), syntheticResults()
	slowLatency(&b.Scenarios[0], TargetPingora, 1.5)
	d := DiffResults(a, b)
	beyond := d.Beyond()
	var names []string
	for _, l := range beyond {
		if l.Scenario != "steady" || l.Target != TargetPingora || l.Better || l.Ratio < 1.4 {
			t.Errorf("unexpected line beyond noise: %+v", l)
		}
		names = append(names, l.Figure)
	}
	if strings.Join(names, ",") != "p50,p99" {
		t.Fatalf("beyond noise: %v", names)
	}
	txt := d.Text()
	if !strings.Contains(txt, "2 difference(s) beyond noise") || !strings.Contains(txt, "- steady pingora p50: B is worse, 1.50×") {
		t.Fatalf("text:\n%s", txt)
	}
	// Faster is named as better; capacity counts when both sides are
	// router-bound.
	c := syntheticResults()
	for i := range c.Scenarios[1].Runs {
		if r := &c.Scenarios[1].Runs[i]; r.Target == TargetGo {
			r.MaxSustainedRPS *= 2
		}
	}
	d = DiffResults(a, c)
	if got := d.Beyond(); len(got) != 1 || got[0].Target != TargetGo || got[0].Figure != "capacity" || !got[0].Better {
		t.Fatalf("capacity doubled: %+v", got)
	}
}

func TestDiffNeedsRounds(t *testing.T) {
	a, b := syntheticResults(), syntheticResults()
	for _, r := range []*Results{a, b} {
		s := &r.Scenarios[0]
		var one []Run
		for _, run := range s.Runs {
			if run.Round == 1 {
				one = append(one, run)
			}
		}
		s.Runs = one
	}
	slowLatency(&b.Scenarios[0], TargetPingora, 3)
	d := DiffResults(a, b)
	for _, l := range d.Lines {
		if l.Scenario == "steady" && (l.Beyond || !strings.HasPrefix(l.Why, "too few rounds")) {
			t.Fatalf("one round a side: %+v", l)
		}
	}
	b.Scenarios = b.Scenarios[:1]
	if d := DiffResults(a, b); len(d.Missing) != 1 || d.Missing[0] != "scenario cap only in A" {
		t.Fatalf("missing: %v", d.Missing)
	}
}
