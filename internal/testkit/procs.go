package testkit

import (
	"testing"
	"time"

	"cellbench/internal/proc"
	"cellbench/mockbackends/ready"
)

// Bounds of the process-level tests: a -race binary on a busy two-core
// machine starts and stops slowly.
const (
	StartTimeout = 15 * time.Second
	StopGrace    = 5 * time.Second // SIGTERM → SIGKILL
)

// Start starts spec's child for the test and stops it (SIGTERM, SIGKILL
// after StopGrace) when the test ends.
func Start(t testing.TB, spec proc.Spec) *proc.Process {
	t.Helper()
	p, err := proc.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(StopGrace); err != nil {
			t.Error(err)
		}
	})
	return p
}

// StartCells runs the mockbackends binary bin with one cell per name, every
// listener on a port the kernel picks, and returns it with its ready line.
// On a failed test the cells' stderr is logged.
func StartCells(t testing.TB, bin string, names ...string) (*proc.Process, ready.Line) {
	t.Helper()
	args := []string{"--admin", "127.0.0.1:0"}
	for _, n := range names {
		args = append(args, "--cell", n+"=127.0.0.1:0")
	}
	p := Start(t, proc.Spec{Name: "mockbackends", Path: bin, Args: args, Ready: ready.Is})
	line, err := p.WaitReady(StartTimeout)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ready.Parse(line) // ready.Is accepted it
	for _, n := range names {
		if l.Cells[n] == "" {
			t.Fatalf("mockbackends ready line names no address for cell %q: %s", n, line)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mockbackends stderr (tail):\n%s", p.StderrTail())
		}
	})
	return p, l
}
