package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// cpuSet is a sorted set of CPU numbers.
type cpuSet []int

// parseCPUList reads the kernel's list format ("0", "1-3", "0,2-3").
func parseCPUList(s string) (cpuSet, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q: not a CPU list", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q: not a CPU list", s)
			}
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	var out cpuSet
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

func (s cpuSet) minus(o cpuSet) cpuSet {
	drop := map[int]bool{}
	for _, c := range o {
		drop[c] = true
	}
	var out cpuSet
	for _, c := range s {
		if !drop[c] {
			out = append(out, c)
		}
	}
	return out
}

func (s cpuSet) String() string {
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// onlineCPUs is every online CPU, whatever this process's affinity is.
func onlineCPUs() (cpuSet, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(string(b))
}

// pinnedEnv marks a harness that already runs on the generator CPUs.
const pinnedEnv = "CELLBENCH_HARNESS_CPUS"

// pinSelf re-executes the harness under taskset on cpus, so that every
// thread of the load generator stays there (setting the affinity of the
// running process would only move the calling thread).
func pinSelf(cpus string) error {
	if os.Getenv(pinnedEnv) == cpus {
		return nil
	}
	if os.Getenv(pinnedEnv) != "" {
		return errors.New("harness was pinned to other CPUs than this run needs")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("taskset (util-linux) is needed to split the CPUs: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", cpus, self}, os.Args[1:]...)
	return syscall.Exec(taskset, argv, append(os.Environ(), pinnedEnv+"="+cpus))
}
