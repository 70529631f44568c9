package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"cellbench/harness/report"
)

// A per-target CPU quota (--target-cpu-quota pingora=0.2) deliberately
// slows one proxy while the others keep the common budget: the same
// binary, less CPU, so a `harness diff` against a run without it must name
// that target and nothing else. It exists to test the harness, not to
// compare proxies (a verdict between targets on different budgets means
// nothing); the report's setup states it.

// minQuotaCores is the least quota the kernel takes: 1 ms of CPU per
// period.
var minQuotaCores = float64(time.Millisecond) / float64(quotaPeriod)

// parseQuotaOverrides parses "TARGET=CORES,..." for the proxies.
func parseQuotaOverrides(list string, maxCores float64) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(list) == "" {
		return out, nil
	}
	for _, item := range strings.Split(list, ",") {
		t, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		cores, err := strconv.ParseFloat(v, 64)
		switch {
		case !ok || err != nil:
			return nil, fmt.Errorf("--target-cpu-quota %q: want TARGET=CORES", item)
		case !slices.Contains(report.AllTargets, t) || t == report.TargetDirect:
			return nil, fmt.Errorf("--target-cpu-quota %q: not a proxy target (%s)", t, strings.Join(report.AllTargets[:len(report.AllTargets)-1], ", "))
		case cores < minQuotaCores || cores > maxCores:
			return nil, fmt.Errorf("--target-cpu-quota %s=%v: want cores in [%v, %v]", t, cores, minQuotaCores, maxCores)
		}
		out[t] = cores
	}
	return out, nil
}

// applyQuota sets the proxies' cgroup to target's quota before its run:
// its override, or the common one. Runs are one at a time, so one cgroup
// serves every target.
func (e *env) applyQuota(target string) error {
	if e.quota == nil {
		return nil
	}
	cores := e.quota.cores
	if c, ok := e.quotaOverride[target]; ok {
		cores = c
	}
	return e.quota.limit(cores)
}

// limit writes the cgroup's CFS quota as cores of the period.
func (q *cpuQuota) limit(cores float64) error {
	period := quotaPeriod.Microseconds()
	quota := int64(cores * float64(period))
	if q.v2 {
		return writeFile(filepath.Join(q.dir, "cpu.max"), fmt.Sprintf("%d %d", quota, period))
	}
	return writeFile(filepath.Join(q.dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10))
}
