package main

import (
	"os"
	"os/exec"
	"strings"

	"cellbench/harness/report"
)

// machineInfo describes the host and the sources the numbers come from.
// cores is the number of online CPUs (runtime.NumCPU would count only the
// CPUs this pinned process may use).
func machineInfo(root string, cores int) report.Machine {
	m := report.Machine{Cores: cores}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.Kernel = output(root, "uname", "-sr")
	m.GoVersion = output(root, "go", "version")
	m.RustVersion = output(root, "rustc", "--version")
	m.GitCommit = output(root, "git", "rev-parse", "HEAD")
	m.GitDirty = output(root, "git", "status", "--porcelain", "--untracked-files=no") != ""
	return m
}

func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
