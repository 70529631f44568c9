package cell

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"cellbench/internal/proc"
)

// serveEnv makes the test binary a bare cell server instead of running
// tests: the process benchmarks below measure a cell in its own process.
const serveEnv = "CELLBENCH_BENCH_CELL_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		serveUntilStdinCloses()
		return
	}
	os.Exit(m.Run())
}

func serveUntilStdinCloses() {
	c, err := New("bench", "127.0.0.1:0", Options{})
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(c.Addr())
	io.Copy(io.Discard, os.Stdin)
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
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serveEnv+"=1", "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("child cell did not report its address: %v", err)
	}
	addr = strings.TrimSpace(addr)

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
	cpuBefore := childCPU(b, cmd.Process.Pid)
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
	if cpu := childCPU(b, cmd.Process.Pid) - cpuBefore; cpu > 0 {
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
