package main

import (
	"math"
	"os"
	"testing"
	"time"

	"cellbench/harness/report"
)

func TestGrowthIsTheSlopeAfterTheWarmup(t *testing.T) {
	var samples []report.ProcSample
	for i := 0; i <= 100; i++ {
		at := float64(i) * 6000 // 10 minutes, a sample every 6 s
		rss := 100.0
		if at >= 120000 {
			rss = 100 + (at-120000)/60000 // +1 MiB per minute after 2 min
		} else {
			rss = 50 + at/2400 // the warm-up climbs fast; left out
		}
		samples = append(samples, report.ProcSample{AtMs: at, RSSMiB: rss, FDs: 10 + i/50, Threads: 3})
	}
	g := growth(samples, 10*time.Minute)
	if g == nil || math.Abs(g.RSSPercentPerMin-1) > 0.01 || g.RSSStartMiB != 100 || g.FDsStart != 10 || g.FDsEnd != 12 {
		t.Fatalf("%+v", g)
	}
	if growth(samples[:3], 10*time.Minute) != nil {
		t.Fatal("growth from too few samples")
	}
}

func TestReadSampleOfThisProcess(t *testing.T) {
	s, ok := readSample(os.Getpid())
	if !ok || s.RSSMiB <= 0 || s.FDs < 3 || s.Threads < 1 {
		t.Fatalf("%+v %v", s, ok)
	}
}
