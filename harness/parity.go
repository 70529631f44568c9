package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cellbench/harness/report"
)

// testEvent is one line of `go test -json` (cmd/test2json).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// divergenceMark is what a parity case logs when it asserts a documented
// divergence (docs/parity.md) instead of the contract's answer.
const divergenceMark = "documented divergence"

// runParitySuites runs the parity suite against every router among
// targets, all at once: the suites wait on timeouts far more than they
// compute (about 70 s each alone, most of it asleep), and nothing is being
// measured while they run. Results come back in report.Routers order.
func runParitySuites(e *env, targets []string) []report.ParityResult {
	var routers []string
	for _, t := range report.Routers {
		if slices.Contains(targets, t) {
			routers = append(routers, t)
		}
	}
	out := make([]report.ParityResult, len(routers))
	// Compiled once into the build cache first: three go test processes
	// started at once would each compile the suite.
	if err := buildParity(e); err != nil {
		for i, t := range routers {
			out[i] = report.ParityResult{Router: t, Error: err.Error()}
		}
		return out
	}
	var wg sync.WaitGroup
	for i, t := range routers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bin, engine := e.routerCommand(t)
			e.log("parity suite against %s", t)
			p := runParity(e, t, bin, engineOf(engine), e.allCPUs)
			e.log("parity %s: %d pass, %d fail, %d skip %s", t, p.Pass, p.Fail, p.Skip, p.Error)
			out[i] = p
		}()
	}
	wg.Wait()
	return out
}

// buildParity compiles the parity suite's test binary, and so fills the
// build cache the suites' go test runs then use.
func buildParity(e *env) error {
	dir, err := os.MkdirTemp("", "cellbench-parity-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("taskset", "-c", e.allCPUs, "go", "test", "-c", "-o", dir, "./parity/...")
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c ./parity/...: %v %s", err, strings.TrimSpace(lastLines(string(out), 5)))
	}
	return nil
}

// runParity runs the parity suite against one router target (its binary,
// and for the Go router its engine). Every test and subtest result is
// counted.
func runParity(e *env, target, bin, engine, allCPUs string) report.ParityResult {
	res := report.ParityResult{Router: target, Binary: bin}
	router := report.TargetPingora
	if engine != "" {
		router = report.TargetGo
	}
	start := time.Now()
	cmd := exec.Command("taskset", "-c", allCPUs, "go", "test", "-json", "-count=1", "-timeout", "8m", "./parity/...")
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "CELLBENCH_ROUTER_BIN="+bin, "CELLBENCH_ROUTER="+router, "CELLBENCH_GO_ENGINE="+engine)
	out, err := cmd.StdoutPipe()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		res.Error = err.Error()
		return res
	}
	counted := parseTestEvents(out, &res)
	err = cmd.Wait()
	res.DurationS = time.Since(start).Seconds()
	if err != nil && res.Fail == 0 {
		// A build failure or a crash: no test failed, yet the suite did.
		res.Error = fmt.Sprintf("go test: %v %s", err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	if counted == 0 && res.Error == "" {
		res.Error = "no test results"
	}
	return res
}

func parseTestEvents(r io.Reader, res *report.ParityResult) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	divergent := map[string]bool{}
	for sc.Scan() {
		var ev testEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "output":
			if strings.Contains(ev.Output, divergenceMark) && !divergent[ev.Test] {
				divergent[ev.Test] = true
				res.Divergent = append(res.Divergent, ev.Test)
			}
			continue
		case "pass":
			res.Pass++
		case "fail":
			res.Fail++
			res.Failed = append(res.Failed, ev.Test)
		case "skip":
			res.Skip++
			res.Skipped = append(res.Skipped, ev.Test)
		default:
			continue
		}
		n++
	}
	sort.Strings(res.Failed)
	sort.Strings(res.Skipped)
	sort.Strings(res.Divergent)
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// engineOf is the --engine value of a Go router's arguments ("" for
// Pingora).
func engineOf(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--engine" {
			return args[i+1]
		}
	}
	return ""
}
