package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory of the cellbench module, whichever package
// directory a test runs in.
func ModuleRoot() (string, error) {
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

// GoBuild builds each of the module's commands (a path from the module
// root: "mockbackends", "go-router/bench/floorproxy") into dir, named
// after its last element; with race, under the race detector. The go on
// PATH builds, the one running the test.
func GoBuild(dir string, race bool, cmds ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	for _, c := range cmds {
		args := []string{"build", "-o", filepath.Join(dir, filepath.Base(c))}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./"+c)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
	}
	return nil
}
