package parity

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"cellbench/internal/testkit"
)

// Binaries under test, resolved once by TestMain.
var (
	routerBin  string // CELLBENCH_ROUTER_BIN, or a fresh build of ./go-router
	routerName string // CELLBENCH_ROUTER: the X-Router value the router must send
	// routerArgs go first on every router command line: --engine from
	// CELLBENCH_GO_ENGINE (stdlib or tuned) for the Go router, else none
	// (the Go router's default engine is tuned).
	routerArgs  []string
	mockBin     string // a fresh build of ./mockbackends
	cpBin       string // a fresh build of ./controlplane
	raceEnabled bool   // set by race_test.go when the suite runs with -race
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "cellbench-parity-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "parity:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := resolveBinaries(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "parity:", err)
		return 1
	}
	if err := resolveEngine(); err != nil {
		fmt.Fprintln(os.Stderr, "parity:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "parity: router %s %q (X-Router %q), mock cells %s, control plane %s\n", routerBin, routerArgs, routerName, mockBin, cpBin)
	return m.Run()
}

// resolveEngine sets routerArgs from CELLBENCH_GO_ENGINE.
func resolveEngine() error {
	switch engine := os.Getenv("CELLBENCH_GO_ENGINE"); {
	case engine == "":
	case routerName != "go":
		return fmt.Errorf("CELLBENCH_GO_ENGINE=%q is for the Go router, not %s", engine, routerName)
	case engine == "stdlib" || engine == "tuned":
		routerArgs = []string{"--engine", engine}
	default:
		return fmt.Errorf("CELLBENCH_GO_ENGINE must be stdlib or tuned, got %q", engine)
	}
	return nil
}

func resolveBinaries(tmp string) error {
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	mockBin, cpBin = filepath.Join(tmp, "mockbackends"), filepath.Join(tmp, "controlplane")
	if err := testkit.GoBuild(tmp, false, "mockbackends", "controlplane"); err != nil {
		return err
	}
	routerBin = os.Getenv("CELLBENCH_ROUTER_BIN")
	routerName = os.Getenv("CELLBENCH_ROUTER")
	if routerBin == "" {
		if routerName != "" && routerName != "go" {
			return fmt.Errorf("CELLBENCH_ROUTER=%q needs CELLBENCH_ROUTER_BIN", routerName)
		}
		routerName = "go"
		routerBin = filepath.Join(tmp, "go-router")
		return testkit.GoBuild(tmp, raceEnabled, "go-router")
	}
	if routerName != "go" && routerName != "pingora" {
		return fmt.Errorf("CELLBENCH_ROUTER must be go or pingora with CELLBENCH_ROUTER_BIN, got %q", routerName)
	}
	// `go test` runs in the package directory; a relative path given on the
	// command line at the repository root is meant relative to the root.
	if !filepath.IsAbs(routerBin) {
		if _, err := os.Stat(routerBin); err != nil {
			routerBin = filepath.Join(root, routerBin)
		}
	}
	if _, err := os.Stat(routerBin); err != nil {
		return fmt.Errorf("CELLBENCH_ROUTER_BIN: %w", err)
	}
	return nil
}
