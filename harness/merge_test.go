package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cellbench/harness/loadgen"
	"cellbench/harness/metrics"
)

// syntheticShares writes the n shares of a 100 req/s, 1 s schedule of
// one target, every request answered in 1 ms, with the given clock
// offsets (nil: a command-line start).
func syntheticShares(t *testing.T, n int, offsets []float64) []string {
	t.Helper()
	dir := t.TempDir()
	doc, _ := json.Marshal(map[string]any{"name": "synthetic", "question": "?", "config": "config/examples/demo.json",
		"access_log": "off", "targets": []map[string]any{{"routing_key": "acme", "method": "GET", "path": "/", "weight": 1}},
		"rate": 100, "duration_ms": 1000, "slo": map[string]any{"min_success": 0.99, "max_p99_ms": 100}})
	start := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	var files []string
	for i := range n {
		h := attackHeader{Scenario: doc, DurationScale: 1, TargetName: "go", TargetURL: "http://router:8080", Share: shareSpec{i, n},
			Rate: 100, DurationMs: 1000, Conns: 1, Start: start, StartSource: "command line", Host: fmt.Sprintf("host-%d", i),
			Expected: map[string]string{"acme": "tier1"}, BootstrapVersion: "demo-1"}
		if offsets != nil {
			off := offsets[i]
			h.StartSource, h.ClockOffsetMs, h.ClockUncertaintyMs = "barrier", &off, 0.05
		}
		var recs []metrics.Record
		for k := i; k < 100; k += n {
			recs = append(recs, metrics.Record{Start: time.Duration(k) * 10 * time.Millisecond, Latency: time.Millisecond, Code: 200, Served: "tier1"})
		}
		f := filepath.Join(dir, fmt.Sprintf("share-%d.jsonl", i))
		if err := writeAttackFile(f, h, recs); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func TestMergeOfShares(t *testing.T) {
	files := syntheticShares(t, 3, []float64{0.5, -1.25, 0.1})
	res, err := mergeAttacks(files, 0)
	if err != nil {
		t.Fatal(err)
	}
	run := res.Scenarios[0].Runs[0]
	if s := run.Summary; s.Requests != 100 || s.Successes != 100 || s.Latency.P50 != 1 || run.Misrouted != 0 || run.Invalid != "" {
		t.Fatalf("merged run: %+v, misrouted %d, invalid %q", s, run.Misrouted, run.Invalid)
	}
	for i, sec := range run.Timeline {
		if sec.Requests != 100 {
			t.Fatalf("second %d: %d requests", i, sec.Requests)
		}
	}
	a := run.Attackers
	if a.Shares != 3 || a.ClockSkewMs != 1.75 || a.AlignmentMs != 0.05 || a.Warning != "" || a.Each[1].Requests != 33 || a.Each[0].Requests != 34 {
		t.Fatalf("attackers: %+v", a)
	}
	res, err = mergeAttacks(syntheticShares(t, 2, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Scenarios[0].Runs[0].Attackers; a.ClockSkewMs != -1 || !strings.Contains(a.Warning, "not measured") {
		t.Fatalf("command-line starts: %+v", a)
	}
}

// Files that are not exactly the shares of one schedule are refused with
// the reason.
func TestMergeRefusesWhatIsNotOneSchedule(t *testing.T) {
	files := syntheticShares(t, 3, nil)
	other := syntheticShares(t, 2, nil)
	truncated := filepath.Join(t.TempDir(), "short.jsonl")
	b, _ := os.ReadFile(files[2])
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(truncated, []byte(strings.Join(lines[:len(lines)-5], "")), 0o644)
	for _, c := range []struct {
		files []string
		want  string
	}{
		{files[:2], "2 files for a run of 3 shares"},
		{[]string{files[0], files[1], files[1]}, "both share 1/3"},
		{[]string{files[0], files[1], other[1]}, "not shares of one run"},
		{[]string{files[0], files[1], truncated}, "the file ends after"},
		{[]string{files[0], files[1], "/nonexistent"}, "no such file"},
	} {
		if _, err := mergeAttacks(c.files, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.files, err, c.want)
		}
	}
}

// Two attackers at a barrier whose clock runs 250 ms ahead of theirs
// measure that offset and get one start on the barrier's clock.
func TestBarrierStartAndClockOffset(t *testing.T) {
	const skew = 250 * time.Millisecond
	b := newBarrier(2, time.Second)
	b.now = func() time.Time { return time.Now().Add(skew) }
	srv := httptest.NewServer(b)
	defer srv.Close()

	offset, uncertainty, err := clockOffset(context.Background(), srv.URL+"/clock")
	if err != nil {
		t.Fatal(err)
	}
	if d := offset - skew; d < -uncertainty-time.Millisecond || d > uncertainty+time.Millisecond {
		t.Fatalf("offset %v ± %v, the barrier runs %v ahead", offset, uncertainty, skew)
	}
	var wg sync.WaitGroup
	starts := make([]time.Time, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &attackOptions{barrier: srv.URL}
			var h attackHeader
			starts[i], errs[i] = o.startTime(context.Background(), loadgen.Share{Index: i, Of: 2}, &h)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// On this host's clock: the barrier's start less the offset, about
	// the lead from now.
	if !starts[0].Equal(starts[1]) && starts[0].Sub(starts[1]).Abs() > 2*time.Millisecond {
		t.Fatalf("starts %v and %v", starts[0], starts[1])
	}
	if lead := time.Until(starts[0]); lead < 500*time.Millisecond || lead > time.Second+50*time.Millisecond {
		t.Fatalf("start in %v, want about the 1 s lead (the skew corrected)", lead)
	}
	select {
	case <-b.done:
	case <-time.After(time.Second):
		t.Fatal("the barrier is not done once both shares have their start")
	}
	for _, q := range []string{"share=2&of=2", "share=0&of=3", "share=x&of=2"} {
		resp, err := srv.Client().Post(srv.URL+"/arrive?"+q, "", nil)
		if err != nil || resp.StatusCode != 400 {
			t.Errorf("%s: %v %v", q, err, resp.Status)
		}
	}
}
