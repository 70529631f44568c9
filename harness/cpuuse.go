package main

import (
	"os"
	"time"

	"cellbench/harness/report"
	"cellbench/internal/proc"
)

// cpuSample is the machine's busy CPU time and the part of it that belongs
// to this run (the harness itself, the cells, the router, the control
// plane); the difference over a run is load from elsewhere on the machine
// (other users, builds), which makes numbers noisy and is reported.
type cpuSample struct{ machine, ours time.Duration }

// otherLoad is the CPU used outside this run between two samples, in
// cores (1.0 = one core fully busy with something else).
func otherLoad(a, b cpuSample, wall time.Duration) float64 {
	other := (b.machine - a.machine) - (b.ours - a.ours)
	if other < 0 || wall <= 0 {
		return 0
	}
	return other.Seconds() / wall.Seconds()
}

// sample is the CPU of the three parties of a run at one instant.
type sample struct {
	router, generator, cells procStats
	all                      cpuSample
	at                       time.Time
}

// sample reads each process of the run once: its own figures, and their
// sum for the machine's foreign load.
func (s *runSetup) sample() sample {
	sm := sample{at: time.Now()}
	sm.all.machine, _ = proc.MachineBusy()
	read := func(p *proc.Process) procStats {
		if p == nil || p.Exited() {
			return procStats{}
		}
		st, _ := readProcStats(p.PID())
		return st
	}
	sm.router, sm.cells = read(s.router), read(s.mocks)
	if s.router != nil {
		sm.router.Throttled = s.env.quota.throttled()
	}
	sm.generator, _ = readProcStats(os.Getpid())
	sm.all.ours = sm.router.CPU + sm.cells.CPU + sm.generator.CPU + read(s.cp).CPU
	if s.remote != nil {
		// After the machine's sum: a remote router's CPU is not this host's.
		sm.router = s.remote.stats()
	}
	return sm
}

// window is what the three parties used between two samples for requests.
type window struct {
	router, generator, cells *report.ProcStats
	// generatorSideBusy is the generator and the cells' CPU over the
	// generator CPUs.
	generatorSideBusy float64
	otherLoad         float64
}

func (s *runSetup) between(a, b sample, requests int) window {
	wall := b.at.Sub(a.at)
	e := s.env
	w := window{
		generator: procStatsOf(a.generator, b.generator, requests, wall, float64(e.generatorCores)),
		cells:     procStatsOf(a.cells, b.cells, requests, wall, float64(e.generatorCores)),
		otherLoad: otherLoad(a.all, b.all, wall),
	}
	w.generatorSideBusy = w.generator.Utilization + w.cells.Utilization
	if s.proxied() {
		w.router = procStatsOf(a.router, b.router, requests, wall, e.routerCores)
	}
	return w
}

// procStatsOf converts two /proc samples around a load window; cores is
// the budget the utilisation is a fraction of.
func procStatsOf(before, after procStats, requests int, window time.Duration, cores float64) *report.ProcStats {
	cpu := (after.CPU - before.CPU).Seconds()
	st := &report.ProcStats{CPUSeconds: cpu, MaxRSSMiB: float64(after.MaxRSSB) / (1 << 20),
		ThrottledMs: msOf(after.Throttled - before.Throttled)}
	if requests > 0 {
		st.CPUPerKReqMs = cpu * 1000 / float64(requests) * 1000
	}
	if window > 0 && cores > 0 {
		st.Utilization = cpu / window.Seconds() / cores
	}
	return st
}
