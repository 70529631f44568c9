package proc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sh(t *testing.T, script string, spec Spec) *Process {
	t.Helper()
	spec.Path, spec.Args = "/bin/sh", []string{"-c", script}
	p, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

func TestWaitReadyReturnsTheFirstAcceptedLine(t *testing.T) {
	var out strings.Builder
	p := sh(t, `echo noise; printf 'REA'; sleep 0.1; printf 'DY 1\nREADY 2\n'; exec sleep 10`,
		Spec{Stdout: &out, Ready: func(l string) bool { return strings.HasPrefix(l, "READY") }})
	line, err := p.WaitReady(5 * time.Second)
	if err != nil || line != "READY 1" {
		t.Fatalf("ready line %q, %v; want READY 1 (split over two writes)", line, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.WaitExit(0); code != -1 {
		t.Errorf("exit code %d after SIGTERM, want -1 (a signal)", code)
	}
	if out.String() != "noise\nREADY 1\nREADY 2\n" {
		t.Errorf("stdout copy %q", out.String())
	}
}

func TestWaitReadyFailsWhenTheChildExitsFirst(t *testing.T) {
	p := sh(t, `echo no luck >&2; exit 3`, Spec{Name: "doomed", Ready: func(string) bool { return true }})
	_, err := p.WaitReady(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "doomed exited before its ready line") || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("error %v, want the exit and the stderr tail", err)
	}
	if code, ok := p.WaitExit(time.Second); !ok || code != 3 {
		t.Errorf("exit %d (exited %v), want 3", code, ok)
	}
}

func TestWaitReadyTimesOut(t *testing.T) {
	p := sh(t, `exec sleep 10`, Spec{Ready: func(string) bool { return true }})
	if _, err := p.WaitReady(50 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "no ready line within") {
		t.Fatalf("error %v, want a timeout", err)
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	// An ignored SIGTERM stays ignored across exec.
	p := sh(t, `trap '' TERM; echo up; exec sleep 10`, Spec{Ready: func(string) bool { return true }})
	if _, err := p.WaitReady(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("Stop took %v, want the grace and then SIGKILL at once", d)
	}
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
}

func TestCPUsPinTheChild(t *testing.T) {
	var out strings.Builder
	p := sh(t, `grep Cpus_allowed_list /proc/self/status`, Spec{CPUs: "0", Stdout: &out})
	if code, ok := p.WaitExit(5 * time.Second); !ok || code != 0 {
		t.Fatalf("exit %d (exited %v): %s", code, ok, p.StderrTail())
	}
	if f := strings.Fields(out.String()); len(f) != 2 || f[1] != "0" {
		t.Fatalf("child's CPU list %q, want 0", out.String())
	}
}

func TestStderrTailKeepsTheEnd(t *testing.T) {
	p := sh(t, `i=0; while [ $i -lt 500 ]; do echo "line $i" >&2; i=$((i+1)); done`, Spec{})
	<-p.Done()
	tail := p.StderrTail()
	if len(tail) > stderrTail || !strings.HasSuffix(tail, "line 499") || strings.Contains(tail, "line 0\n") {
		t.Fatalf("tail of %d bytes ends %q", len(tail), tail[max(0, len(tail)-20):])
	}
}

func TestWaitHealthy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	p := sh(t, `exec sleep 10`, Spec{})
	if err := p.WaitHealthy(context.Background(), up.URL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	gone := sh(t, `echo bye >&2`, Spec{Name: "gone"})
	err := gone.WaitHealthy(context.Background(), "http://127.0.0.1:1/", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "gone exited during startup") || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("error %v, want the exit and the stderr tail", err)
	}
}

func TestStatsOfAProcess(t *testing.T) {
	// A command name with spaces and parentheses, as /proc/PID/stat puts
	// it inside its own parentheses.
	odd := filepath.Join(t.TempDir(), "x) (y z")
	if err := os.Symlink("/bin/sh", odd); err != nil {
		t.Fatal(err)
	}
	p, err := Start(Spec{Path: odd, Args: []string{"-c", `while :; do :; done`}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cpu, err := CPUTime(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if cpu > 0 {
			if cpu%(10*time.Millisecond) != 0 {
				t.Errorf("CPU time %v is not whole 10 ms ticks", cpu)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a busy child used no CPU time in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := ReadMemory(p.PID())
	if err != nil || m.RSS <= 0 || m.PeakRSS < m.RSS || m.Threads != 1 {
		t.Errorf("memory %+v, %v; want RSS > 0, peak >= RSS, one thread", m, err)
	}
	if n, err := OpenFDs(p.PID()); err != nil || n < 3 {
		t.Errorf("%d descriptors, %v; want stdin, stdout and stderr at least", n, err)
	}
	if _, err := CPUTime(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestMachineBusyGrows(t *testing.T) {
	a, err := MachineBusy()
	if err != nil || a <= 0 {
		t.Fatalf("%v, %v", a, err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if b, _ := MachineBusy(); b <= a {
		t.Errorf("machine busy time %v, then %v after 50 ms of work", a, b)
	}
}

func TestDirAndEnv(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	p := sh(t, `pwd; echo "$PROC_TEST_VALUE"`, Spec{Dir: dir, Env: []string{"PROC_TEST_VALUE=v1"}, Stdout: &out})
	if code, ok := p.WaitExit(5 * time.Second); !ok || code != 0 {
		t.Fatalf("exit %d (exited %v): %s", code, ok, p.StderrTail())
	}
	if want := dir + "\nv1\n"; out.String() != want {
		t.Fatalf("stdout %q, want %q", out.String(), want)
	}
}
