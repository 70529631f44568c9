package main

import (
	"fmt"
	"time"

	"cellbench/harness/scenario"
)

// progress counts runs and estimates the time left from the scenarios'
// planned durations.
type progress struct {
	start       time.Time
	done, total int
	planned     time.Duration
}

// runOverhead is a run's time beyond its load: starting the processes,
// the warm-up, stopping them.
const runOverhead = warmup + 2*time.Second

func newProgress(e *env, scs []*scenario.Scenario, targets []string) *progress {
	p := &progress{start: time.Now()}
	for _, sc := range scs {
		for _, t := range targets {
			if e.notApplicable(sc, t) == "" {
				p.total += sc.Rounds(e.rounds)
				p.planned += time.Duration(sc.Rounds(e.rounds)) * (sc.Duration(e.scale) + runOverhead)
			}
		}
	}
	return p
}

// next is the "[n/N elapsed, ETA]" prefix of the next run's log line; the
// estimate scales the plan by how the runs so far compared with theirs.
func (p *progress) next() string {
	p.done++
	elapsed := time.Since(p.start)
	eta := p.planned - elapsed
	if p.done > 1 {
		share := float64(p.done-1) / float64(p.total)
		eta = time.Duration(float64(elapsed)/share) - elapsed
	}
	return fmt.Sprintf("[%d/%d, %s elapsed, about %s left]", p.done, p.total, elapsed.Round(time.Second), max(eta, 0).Round(time.Second))
}
