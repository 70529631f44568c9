package main

import (
	"testing"

	"cellbench/config"
	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

func TestPlacementExpectations(t *testing.T) {
	cfg := &config.Config{DefaultPlacement: "tier3", Routes: map[string]string{"acme": "tier1", "visa": "visa"}}
	targets := []scenario.Target{{RoutingKey: "acme", Weight: 2}, {RoutingKey: "visa", Weight: 1}, {RoutingKey: "other", Weight: 1}}
	exp := expectedPlacements(cfg, targets)
	if exp["acme"] != "tier1" || exp["visa"] != "visa" || exp["other"] != "tier3" {
		t.Fatalf("expected %v", exp)
	}
	shares := expectedShares(exp, targets)
	if shares["tier1"] != 0.5 || shares["visa"] != 0.25 || shares["tier3"] != 0.25 {
		t.Fatalf("shares %v", shares)
	}
	recs := []metrics.Record{
		{Code: 200, Target: 0, Served: "tier1"},
		{Code: 200, Target: 0, Served: "tier2"},                        // misrouted
		{Code: 200, Target: 1, Served: "tier3", Failover: "unhealthy"}, // failover, not misrouted
		{Code: 502, Target: 2, Served: "tier1"},                        // not a success
		{Code: 200, Target: 2, Served: "tier3"},
	}
	if n := misrouted(exp, targets, recs); n != 1 {
		t.Fatalf("misrouted %d, want 1", n)
	}
}
