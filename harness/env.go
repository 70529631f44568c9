package main

import (
	"strconv"

	"cellbench/harness/report"
)

// env is what every run needs: binaries, the repository root and the CPU
// budget.
type env struct {
	root         string
	goRouter     string
	pingora      string
	mockbackends string
	controlplane string
	// goFloor and pingoraFloor are the framework floors' binaries.
	goFloor       string
	pingoraFloor  string
	routerCPUs    string
	generatorCPUs string
	allCPUs       string
	cores         int
	workers       int
	scale         float64
	log           func(format string, args ...any)
	// nginx is the anchor's binary ("" when nginx is not installed: its
	// rows then say so).
	nginx string
	// quota caps every proxy under test (nil: no quota); routerCores is
	// the budget in cores, the divisor of utilisation.
	quota *cpuQuota
	// quotaOverride is a target's own quota in cores (--target-cpu-quota).
	quotaOverride map[string]float64
	routerCores   float64
	// generatorCores is the number of generator CPUs.
	generatorCores int
	rounds         int
	quick          bool
	// remote are the routers the harness did not start (compare --target),
	// by target name; cellsAdmin and controlPlaneAddr are the host:port of
	// the cells' chaos API and the control plane they use.
	remote           map[string]*remoteTarget
	cellsAdmin       string
	controlPlaneAddr string
}

// routerCommand is the binary and the engine arguments of a router target.
func (e *env) routerCommand(target string) (string, []string) {
	switch target {
	case report.TargetGo:
		return e.goRouter, []string{"--engine", "stdlib"}
	case report.TargetGoTuned:
		return e.goRouter, []string{"--engine", "tuned"}
	}
	return e.pingora, nil
}

// binaries are the executables runs against targets need.
func (e *env) binaries(targets []string) []string {
	out := []string{e.mockbackends, e.controlplane}
	for _, t := range targets {
		switch t {
		case report.TargetGo, report.TargetGoTuned:
			out = append(out, e.goRouter)
		case report.TargetPingora:
			out = append(out, e.pingora)
		case report.TargetGoFloor:
			out = append(out, e.goFloor)
		case report.TargetPingoraFloor:
			out = append(out, e.pingoraFloor)
		}
	}
	return out
}

// routerArgv is a router target's command line: its config file, listen
// and admin addresses, access log ("off" or a path), the control plane's
// address when it takes pushes ("" when not).
func (e *env) routerArgv(target, cfgPath, listen, admin, accessLog, controlPlane string) (string, []string) {
	bin, args := e.routerCommand(target)
	args = append(args, "--config", cfgPath, "--listen", listen, "--admin", admin,
		"--access-log", accessLog, "--workers", strconv.Itoa(e.workers), "--node-id", "harness-"+target)
	if controlPlane != "" {
		args = append(args, "--control-plane", "ws://"+controlPlane+"/connect")
	}
	return bin, args
}
