package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ): 100 on every
// Linux architecture Go supports, whatever the kernel's own tick rate.
const userHZ = 100

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// CPUTime is the user + system time pid has used so far (/proc/PID/stat),
// in whole ticks of 10 ms.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which may hold spaces and
	// parentheses itself; utime and stime are fields 14 and 15 of the line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short line", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ticks(utime + stime), nil
}

// Memory is what /proc/PID/status says of a process's memory and threads.
type Memory struct {
	RSS     int64 // resident bytes now (VmRSS)
	PeakRSS int64 // the highest resident bytes so far (VmHWM)
	Threads int
}

// ReadMemory reads pid's resident memory and thread count.
func ReadMemory(pid int) (Memory, error) {
	var m Memory
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	kib := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	var seen int
	for _, line := range strings.Split(string(b), "\n") {
		key, v, _ := strings.Cut(line, ":")
		switch key {
		case "VmRSS":
			m.RSS, seen = kib(v), seen+1
		case "VmHWM":
			m.PeakRSS, seen = kib(v), seen+1
		case "Threads":
			m.Threads, _ = strconv.Atoi(strings.TrimSpace(v))
			seen++
		}
	}
	if seen < 3 {
		// A zombie has no memory lines: its figures are gone, not zero.
		return m, fmt.Errorf("/proc/%d/status: no VmRSS, VmHWM or Threads", pid)
	}
	return m, nil
}

// OpenFDs is the number of descriptors pid has open.
func OpenFDs(pid int) (int, error) {
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(fds), err
}

// MachineBusy is the CPU time every process of the machine has used since
// boot: user, nice, system and steal from /proc/stat. Interrupt and softirq
// time is left out: loopback traffic is processed there and charged to no
// process, so counting it would report a run's own networking as another
// process's load.
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected first line")
	}
	var n int64
	for _, i := range []int{1, 2, 3, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		n += v
	}
	return ticks(n), nil
}
