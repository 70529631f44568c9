package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// build compiles the Go binaries and the release Pingora router, as
// `make build` does, on every core (affinity is widened for the children).
func build(e *env, allCPUs string) error {
	if err := os.MkdirAll(filepath.Join(e.root, "bin"), 0o755); err != nil {
		return err
	}
	steps := [][]string{
		{"go", "build", "-o", e.goRouter, "./go-router"},
		{"go", "build", "-o", e.controlplane, "./controlplane"},
		{"go", "build", "-o", e.mockbackends, "./mockbackends"},
		{"go", "build", "-o", e.goFloor, "./go-router/bench/floorproxy"},
		{"cargo", "build", "--release", "--locked", "-p", "pingora-router", "--bin", "pingora-router", "--example", "floor"},
	}
	for _, s := range steps {
		e.log("build: %v", s)
		cmd := exec.Command("taskset", append([]string{"-c", allCPUs}, s...)...)
		cmd.Dir = e.root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %w", s, err)
		}
	}
	return nil
}
