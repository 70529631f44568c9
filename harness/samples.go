package main

import (
	"context"
	"sync"
	"time"

	"cellbench/harness/report"
	"cellbench/internal/proc"
)

// sampleEvery is how often a run reads its proxy's memory, descriptors and
// threads.
const sampleEvery = 500 * time.Millisecond

// sampler reads one process's resident memory, open descriptors and
// threads at a fixed period until stopped: from /proc, or for a remote
// router from its /metrics.
type sampler struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []report.ProcSample
}

func startSampler(read func() (report.ProcSample, bool), origin time.Time) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			if sm, ok := read(); ok {
				sm.AtMs = msOf(time.Since(origin))
				s.mu.Lock()
				s.samples = append(s.samples, sm)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns its samples.
func (s *sampler) finish() []report.ProcSample {
	s.stop()
	<-s.done
	return s.samples
}

func readSample(pid int) (report.ProcSample, bool) {
	m, err := proc.ReadMemory(pid)
	if err != nil {
		return report.ProcSample{}, false
	}
	fds, err := proc.OpenFDs(pid)
	if err != nil {
		return report.ProcSample{}, false
	}
	return report.ProcSample{RSSMiB: float64(m.RSS) / (1 << 20), Threads: m.Threads, FDs: fds}, true
}

// warmupShare is the part of a run whose samples the growth leaves out:
// pools, caches and the allocator's heap fill up there.
const warmupShare = 0.2

// growth fits a least-squares line through the RSS samples after the
// warm-up share and gives its slope per minute as a share of the RSS at
// the end of the warm-up, with descriptors and threads from then to the
// end. nil with fewer than 4 samples after the warm-up.
func growth(samples []report.ProcSample, window time.Duration) *report.Growth {
	after := warmupShare * msOf(window)
	var tail []report.ProcSample
	for _, s := range samples {
		if s.AtMs >= after {
			tail = append(tail, s)
		}
	}
	if len(tail) < 4 {
		return nil
	}
	var n, sx, sy, sxx, sxy float64
	for _, s := range tail {
		x := s.AtMs / 60000 // minutes
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+s.RSSMiB, sxx+x*x, sxy+x*s.RSSMiB
	}
	first, last := tail[0], tail[len(tail)-1]
	g := &report.Growth{AfterMs: after, RSSStartMiB: first.RSSMiB, RSSEndMiB: last.RSSMiB,
		FDsStart: first.FDs, FDsEnd: last.FDs, ThreadsStart: first.Threads, ThreadsEnd: last.Threads}
	if d := n*sxx - sx*sx; d > 0 && first.RSSMiB > 0 {
		slope := (n*sxy - sx*sy) / d
		g.RSSPercentPerMin = 100 * slope / first.RSSMiB
	}
	return g
}
