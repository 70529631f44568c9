package main

import (
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

// notApplicable says why a target cannot run a scenario ("" if it can).
func (e *env) notApplicable(sc *scenario.Scenario, target string) string {
	if e.remote[target] != nil {
		return e.remoteNotApplicable(sc)
	}
	if report.IsFloor(target) {
		return floorNotApplicable(sc, e.root)
	}
	if target == report.TargetDirect {
		return directNotApplicable(sc)
	}
	if target != report.TargetNginx {
		return ""
	}
	if e.nginx == "" {
		return "nginx is not installed (apt-get install nginx-light)"
	}
	switch {
	case sc.ControlPlane:
		return "nginx takes no control-plane pushes"
	case len(sc.Timeline) > 0:
		return "nginx has no config reload of this format, health-checked fallbacks or breakers"
	}
	return ""
}

// directNotApplicable: with no router there is no config source, so a
// scenario about changing the config (reload, control-plane push) has
// nothing to measure on the direct baseline.
func directNotApplicable(sc *scenario.Scenario) string {
	if sc.ControlPlane {
		return "no router: there is no control plane to push to"
	}
	for _, a := range sc.Timeline {
		if a.ConfigAction() {
			return "no router: there is no config to change"
		}
	}
	return ""
}

// floorNotApplicable: a floor proxy has one fixed peer and no features,
// so it stands in for a router only where every request goes to one
// placement and nothing changes during the run.
func floorNotApplicable(sc *scenario.Scenario, root string) string {
	if sc.ControlPlane || len(sc.Timeline) > 0 {
		return "a floor proxy has no config source, fallbacks or breakers"
	}
	if sc.SlowHeads != nil {
		return "a floor proxy has no client-side protection (it exits when descriptors run out)"
	}
	cfg, err := sc.RouterConfig(root)
	if err != nil {
		return err.Error()
	}
	if len(placementsOf(cfg, sc.Targets)) != 1 {
		return "a floor proxy has one peer; this scenario's keys go to several placements"
	}
	return ""
}
