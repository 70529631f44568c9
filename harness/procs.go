package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the harness (mock cells, a router, the
// control plane). Each runs under taskset on its CPU list, with its stderr in
// the run directory, and dies with the harness (Pdeathsig).
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr string
	done   chan struct{}
	err    error // set before done closes
}

// procs tracks every live child so that a signal or an error path can stop
// them all; only one run's processes are alive at a time.
var procs struct {
	sync.Mutex
	live map[*proc]bool
}

func startProc(name, cpus, logDir, bin string, args ...string) (*proc, *os.File, error) {
	stderrPath := filepath.Join(logDir, name+".stderr")
	errFile, err := os.Create(stderrPath)
	if err != nil {
		return nil, nil, err
	}
	argv := append([]string{"-c", cpus, bin}, args...)
	cmd := exec.Command("taskset", argv...)
	cmd.Stderr = errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// stdout is a plain pipe (not StdoutPipe) so that Wait can run while
	// the caller is still reading the ready line.
	r, w, err := os.Pipe()
	if err != nil {
		errFile.Close()
		return nil, nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		errFile.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stderr: stderrPath, done: make(chan struct{})}
	procs.Lock()
	if procs.live == nil {
		procs.live = map[*proc]bool{}
	}
	procs.live[p] = true
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		errFile.Close()
		procs.Lock()
		delete(procs.live, p)
		procs.Unlock()
		close(p.done)
	}()
	return p, r, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace before SIGKILL.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

func (p *proc) kill() {
	if p == nil || p.exited() {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
}

// stopAll kills every live child; used on SIGINT/SIGTERM of the harness.
func stopAll() {
	procs.Lock()
	var all []*proc
	for p := range procs.live {
		all = append(all, p)
	}
	procs.Unlock()
	for _, p := range all {
		p.stop(3 * time.Second)
	}
}

// stderrTail is the end of a child's stderr, for error messages.
func (p *proc) stderrTail() string {
	b, _ := os.ReadFile(p.stderr)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// freePort asks the kernel for an unused loopback port. The port is free
// when the call returns; another process could take it before the child
// binds it, in which case the child fails to start and the run says so.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// mockReady is the mock backends' ready line (mockbackends/README.md).
type mockReady struct {
	Msg   string            `json:"msg"`
	Admin string            `json:"admin"`
	Cells map[string]string `json:"cells"`
}

// startMocks starts one cell per name on a kernel-chosen port and returns
// the addresses from the ready line.
func startMocks(bin, cpus, logDir string, cells []string) (*proc, mockReady, error) {
	args := []string{"--admin", "127.0.0.1:0"}
	for _, c := range cells {
		args = append(args, "--cell", c+"=127.0.0.1:0")
	}
	p, stdout, err := startProc("mockbackends", cpus, logDir, bin, args...)
	if err != nil {
		return nil, mockReady{}, err
	}
	lines := make(chan string, 1)
	go func() {
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	var ready mockReady
	select {
	case line, ok := <-lines:
		if !ok {
			p.kill()
			return nil, ready, fmt.Errorf("mockbackends exited before its ready line: %s", p.stderrTail())
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Msg != "ready" {
			p.kill()
			return nil, ready, fmt.Errorf("mockbackends: unexpected first line %q", line)
		}
	case <-time.After(15 * time.Second):
		p.kill()
		return nil, ready, errors.New("mockbackends: no ready line within 15 s")
	}
	return p, ready, nil
}

// discardStdout drains a child's stdout.
func discardStdout(r *os.File) {
	go func() {
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
}

// waitHealthy polls GET url until it answers 200, the process exits or the
// timeout passes.
func waitHealthy(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited during startup (%v): %s", p.name, p.err, p.stderrTail())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s within %s: %s", p.name, url, timeout, p.stderrTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// procStats reads a process's CPU time and peak RSS from /proc.
type procStats struct {
	CPU     time.Duration
	MaxRSSB int64
	// Throttled is the quota cgroup's throttled time (router samples only).
	Throttled time.Duration
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProcStats(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name (which may contain spaces) start after ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: short line", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	st.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			st.MaxRSSB = kb << 10
		}
	}
	return st, nil
}

// machineBusy is the CPU time all processes of the machine have used since
// boot (user, nice, system and steal from /proc/stat). Interrupt and softirq
// time is left out: loopback traffic of the run itself is processed there
// and is not charged to its processes, so counting it would report the
// run's own networking as foreign load.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected first line")
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
