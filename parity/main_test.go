package parity

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	mockBin = filepath.Join(tmp, "mockbackends")
	if err := goBuild(root, mockBin, "./mockbackends", false); err != nil {
		return err
	}
	cpBin = filepath.Join(tmp, "controlplane")
	if err := goBuild(root, cpBin, "./controlplane", false); err != nil {
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
		return goBuild(root, routerBin, "./go-router", raceEnabled)
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

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the cellbench module")
	}
	return filepath.Dir(gomod), nil
}

func goBuild(root, out, pkg string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}
