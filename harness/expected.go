package main

import (
	"cellbench/config"
	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

// placementsOf is the set of placements the targets' keys are routed to.
func placementsOf(cfg *config.Config, targets []scenario.Target) map[string]bool {
	out := map[string]bool{}
	for _, p := range expectedPlacements(cfg, targets) {
		out[p] = true
	}
	return out
}

// expectedPlacements maps each routing key of the targets to the placement
// the config routes it to (contract §2.2).
func expectedPlacements(cfg *config.Config, targets []scenario.Target) map[string]string {
	out := map[string]string{}
	for _, t := range targets {
		p, ok := cfg.Routes[t.RoutingKey]
		if !ok {
			p = cfg.DefaultPlacement
		}
		out[t.RoutingKey] = p
	}
	return out
}

// expectedShares is the share of the load each placement gets when every
// key is served by its own placement.
func expectedShares(expected map[string]string, targets []scenario.Target) map[string]float64 {
	total := 0
	for _, t := range targets {
		total += t.Weight
	}
	out := map[string]float64{}
	for _, t := range targets {
		out[expected[t.RoutingKey]] += float64(t.Weight) / float64(total)
	}
	return out
}

// misrouted counts 2xx answers without failover that came from a placement
// other than the one the config routes their key to.
func misrouted(expected map[string]string, targets []scenario.Target, recs []metrics.Record) int {
	n := 0
	for _, r := range recs {
		if !r.Success() || r.Failover != "" || r.Target < 0 || r.Target >= len(targets) {
			continue
		}
		if r.Served != expected[targets[r.Target].RoutingKey] {
			n++
		}
	}
	return n
}
