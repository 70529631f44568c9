package cell

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/proc"
	"cellbench/internal/testkit"
)

// serveEnv makes the test binary a bare cell server instead of running
// tests: the process benchmarks below measure a cell in its own process.
const serveEnv = "CELLBENCH_BENCH_CELL_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		serveUntilTerminated()
		return
	}
	os.Exit(m.Run())
}

// serveUntilTerminated serves until SIGTERM (the benchmark's stop) or the
// parent's death (proc's Pdeathsig).
func serveUntilTerminated() {
	c, err := New("bench", "127.0.0.1:0", Options{})
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println(c.Addr())
	<-term
	os.Exit(0)
}

// The process benchmarks run the cell alone in a child process with
// GOMAXPROCS=1 and load it from this process over 64 keep-alive
// connections. req/cell-cpu-s is the requests divided by the child's CPU
// time (user + system from /proc, 10 ms ticks), i.e. what the cell
// sustains per second of one core, whatever else the machine is doing.
func BenchmarkCellProcessGetEcho64Conns(b *testing.B) {
	benchProcess(b, 64, "GET /api/v1/items?id=42 HTTP/1.1\r\n"+routerHeaders+"\r\n")
}

func BenchmarkCellProcessGetEcho1Conn(b *testing.B) {
	benchProcess(b, 1, "GET /api/v1/items?id=42 HTTP/1.1\r\n"+routerHeaders+"\r\n")
}

func benchProcess(b *testing.B, conns int, request string) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	// The child's first stdout line is its address.
	child := testkit.Start(b, proc.Spec{Name: "bench cell", Path: exe, Env: []string{serveEnv + "=1", "GOMAXPROCS=1"},
		Stderr: os.Stderr, Ready: func(string) bool { return true }})
	addr, err := child.WaitReady(10 * time.Second)
	if err != nil {
		b.Fatal(err)
	}

	clients := make([]*rawClient, conns)
	for i := range clients {
		if clients[i], err = dialRaw(addr, request); err != nil {
			b.Fatal(err)
		}
		defer clients[i].conn.Close()
		if err := clients[i].roundTrip(); err != nil {
			b.Fatal(err)
		}
	}
	cpuBefore := childCPU(b, child.PID())
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, rc := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := rc.roundTrip(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if cpu := childCPU(b, child.PID()) - cpuBefore; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "req/cell-cpu-s")
	}
}

// childCPU is a process's user + system time (/proc, 10 ms ticks).
func childCPU(b *testing.B, pid int) time.Duration {
	cpu, err := proc.CPUTime(pid)
	if err != nil {
		b.Skipf("no /proc to read the cell's CPU time: %v", err)
	}
	return cpu
}
