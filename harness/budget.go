package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuQuota caps the proxy under test below its CPU list: a cgroup (v1 cpu
// controller, or v2's cpu.max) with a CFS bandwidth quota, so that every
// proxy gets the same fraction of a core and the generator side keeps
// enough headroom to be the faster half of every capacity run
// (docs/measurement.md). The period is short so that a throttled proxy
// waits at most a few milliseconds, not the default 100 ms.
type cpuQuota struct {
	dir   string
	cores float64 // the quota in cores
	v2    bool
}

const quotaPeriod = 10 * time.Millisecond

// newCPUQuota makes the cgroup; cores <= 0 means no quota (nil).
func newCPUQuota(cores float64) (*cpuQuota, error) {
	if cores <= 0 {
		return nil, nil
	}
	period := quotaPeriod.Microseconds()
	quota := int64(cores * float64(period))
	name := fmt.Sprintf("cellbench-harness-%d", os.Getpid())
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		q := &cpuQuota{dir: filepath.Join("/sys/fs/cgroup/cpu", name), cores: cores}
		if err := os.Mkdir(q.dir, 0o755); err != nil {
			return nil, quotaErr(err)
		}
		if err := writeFile(filepath.Join(q.dir, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)); err != nil {
			q.remove()
			return nil, quotaErr(err)
		}
		if err := writeFile(filepath.Join(q.dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)); err != nil {
			q.remove()
			return nil, quotaErr(err)
		}
		return q, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		q := &cpuQuota{dir: filepath.Join("/sys/fs/cgroup", name), cores: cores, v2: true}
		if err := os.Mkdir(q.dir, 0o755); err != nil {
			return nil, quotaErr(err)
		}
		if err := writeFile(filepath.Join(q.dir, "cpu.max"), fmt.Sprintf("%d %d", quota, period)); err != nil {
			q.remove()
			return nil, quotaErr(err)
		}
		return q, nil
	}
	return nil, quotaErr(errors.New("no cgroup cpu controller mounted"))
}

func quotaErr(err error) error {
	return fmt.Errorf("--router-cpu-quota needs a writable cgroup cpu controller (run as root, or pass --router-cpu-quota 0 for none): %w", err)
}

func writeFile(path, value string) error { return os.WriteFile(path, []byte(value), 0o644) }

// add moves a process (every thread of it) into the cgroup.
func (q *cpuQuota) add(pid int) error {
	if q == nil {
		return nil
	}
	return writeFile(filepath.Join(q.dir, "cgroup.procs"), strconv.Itoa(pid))
}

// throttled is how long the cgroup's processes have waited on the quota so
// far.
func (q *cpuQuota) throttled() time.Duration {
	if q == nil {
		return 0
	}
	file, key := "cpu.stat", "throttled_time"
	if q.v2 {
		key = "throttled_usec"
	}
	b, err := os.ReadFile(filepath.Join(q.dir, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var k string
		var v int64
		if n, _ := fmt.Sscanf(line, "%s %d", &k, &v); n == 2 && k == key {
			if q.v2 {
				return time.Duration(v) * time.Microsecond
			}
			return time.Duration(v)
		}
	}
	return 0
}

// remove deletes the cgroup once its processes are gone.
func (q *cpuQuota) remove() {
	if q == nil {
		return
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(q.dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// coresOrZero is the quota in cores, 0 without one.
func (q *cpuQuota) coresOrZero() float64 {
	if q == nil {
		return 0
	}
	return q.cores
}
