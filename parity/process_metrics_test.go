package parity

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"cellbench/internal/proc"
)

// Contract §6: both routers export the process series of Prometheus's
// process collector, with the same names, types and meaning. Each value is
// checked against what /proc says about the router process itself.
func TestProcessMetrics(t *testing.T) {
	t.Parallel()
	c := startCells(t, "a")
	started := time.Now()
	r := startRouter(t, configDoc("proc-1", "a", nil, doc{"a": placement("shared", c.endpoint("a"), nil)}))
	pid := r.proc.PID()
	// Work until the CPU time is past the first clock tick (10 ms): a
	// router may serve a few hundred requests within one.
	sent := 0
	eventually(t, 10*time.Second, time.Millisecond, "CPU time above 0", func() (bool, string) {
		for range 100 {
			if got := r.get(t, "/", fmt.Sprintf("k%d", sent)); got.status != 200 {
				t.Fatalf("request %d: status %d", sent, got.status)
			}
			sent++
		}
		cpu := r.metrics(t).value(t, "process_cpu_seconds_total", nil)
		return cpu > 0, fmt.Sprintf("%v s after %d requests", cpu, sent)
	})

	m := r.metrics(t)
	for name, want := range map[string]dto.MetricType{
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
		"process_open_fds":              dto.MetricType_GAUGE,
	} {
		f, ok := m.families[name]
		if !ok {
			t.Fatalf("%s is not exported", name)
		}
		if f.GetType() != want || len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
			t.Errorf("%s: type %v with %d series, want one unlabelled %v", name, f.GetType(), len(f.GetMetric()), want)
		}
	}

	cpu := m.value(t, "process_cpu_seconds_total", nil)
	// One tick of slack: the kernel counts CPU time in whole ticks.
	if limit := time.Since(started).Seconds()*float64(runtime.NumCPU()) + 0.01; cpu <= 0 || cpu > limit {
		t.Errorf("process_cpu_seconds_total = %v, want more than 0 and at most %.2f (wall time since start × CPUs)", cpu, limit)
	}

	rss := m.value(t, "process_resident_memory_bytes", nil)
	if procRSS := residentBytes(t, pid); rss < procRSS/2 || rss > procRSS*2 {
		t.Errorf("process_resident_memory_bytes = %v, /proc/%d/status says %v", rss, pid, procRSS)
	}

	// Idle client connections are descriptors of the router: 20 more must
	// show as at least 20 more.
	fds := m.value(t, "process_open_fds", nil)
	if fds < 3 {
		t.Errorf("process_open_fds = %v, want at least stdin, stdout and stderr", fds)
	}
	const extra = 20
	for range extra {
		conn, err := net.Dial("tcp", r.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	eventually(t, 5*time.Second, 20*time.Millisecond, "the extra connections counted", func() (bool, string) {
		now := r.metrics(t).value(t, "process_open_fds", nil)
		return now >= fds+extra, fmt.Sprintf("%v open, %v before the %d connections", now, fds, extra)
	})
	if later := r.metrics(t).value(t, "process_cpu_seconds_total", nil); later < cpu {
		t.Errorf("process_cpu_seconds_total went down: %v, then %v", cpu, later)
	}
}

// residentBytes is VmRSS of the process, as /proc reports it.
func residentBytes(t *testing.T, pid int) float64 {
	t.Helper()
	m, err := proc.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	return float64(m.RSS)
}
