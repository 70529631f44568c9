package main

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"cellbench/internal/proc"
	"cellbench/mockbackends/ready"
)

// children tracks every live child of the harness (mock cells, a proxy,
// the control plane, the slow-head attacker) so that a signal or an error
// path can stop them all; only one run's processes are alive at a time.
var children struct {
	sync.Mutex
	live map[*proc.Process]bool
}

// startChild starts a child on its CPU list with its stderr in the run
// directory (NAME.stderr).
func startChild(spec proc.Spec, logDir string) (*proc.Process, error) {
	errFile, err := os.Create(filepath.Join(logDir, spec.Name+".stderr"))
	if err != nil {
		return nil, err
	}
	spec.Stderr = errFile
	p, err := proc.Start(spec)
	if err != nil {
		errFile.Close()
		return nil, err
	}
	children.Lock()
	if children.live == nil {
		children.live = map[*proc.Process]bool{}
	}
	children.live[p] = true
	children.Unlock()
	go func() {
		<-p.Done()
		errFile.Close()
		children.Lock()
		delete(children.live, p)
		children.Unlock()
	}()
	return p, nil
}

// stopAll stops every live child; used on SIGINT/SIGTERM of the harness.
func stopAll() {
	children.Lock()
	var all []*proc.Process
	for p := range children.live {
		all = append(all, p)
	}
	children.Unlock()
	for _, p := range all {
		p.Stop(3 * time.Second)
	}
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

// startMocks starts one cell per name on a kernel-chosen port and returns
// the addresses from the ready line.
func startMocks(bin, cpus, logDir string, cells []string) (*proc.Process, ready.Line, error) {
	args := []string{"--admin", "127.0.0.1:0"}
	for _, c := range cells {
		args = append(args, "--cell", c+"=127.0.0.1:0")
	}
	p, err := startChild(proc.Spec{Name: "mockbackends", Path: bin, Args: args, CPUs: cpus, Ready: ready.Is}, logDir)
	if err != nil {
		return nil, ready.Line{}, err
	}
	line, err := p.WaitReady(15 * time.Second)
	if err != nil {
		p.Kill()
		return nil, ready.Line{}, err
	}
	l, _ := ready.Parse(line) // ready.Is accepted it
	return p, l, nil
}

// procStats is a process's CPU time and peak RSS.
type procStats struct {
	CPU     time.Duration
	MaxRSSB int64
	// Throttled is the quota cgroup's throttled time (router samples only).
	Throttled time.Duration
}

func readProcStats(pid int) (procStats, error) {
	cpu, err := proc.CPUTime(pid)
	if err != nil {
		return procStats{}, err
	}
	m, err := proc.ReadMemory(pid)
	return procStats{CPU: cpu, MaxRSSB: m.PeakRSS}, err
}
