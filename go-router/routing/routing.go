// Package routing is the router's pure decision logic (contract section 2):
// which placement a routing key maps to and why, which placement serves
// given the availability of each candidate, and whether a failed attempt may
// be retried. It does no I/O and keeps no mutable state, so every rule is a
// row in a table test.
//
// Placements are referred to by index into Table.Names so that the request
// path never hashes a placement name: the router keeps its per-placement
// runtime state in a slice with the same indexes.
package routing

import (
	"sort"

	"cellbench/config"
)

// Reason is why a request went to its primary placement (X-Route-Reason).
type Reason uint8

const (
	ReasonDefault Reason = iota
	ReasonShared
	ReasonDedicated
)

var reasonNames = [...]string{ReasonDefault: "default", ReasonShared: "shared", ReasonDedicated: "dedicated"}

func (r Reason) String() string { return reasonNames[r] }

// FailoverReason is why the primary placement was skipped (X-Failover-Reason).
type FailoverReason uint8

const (
	NoFailover FailoverReason = iota
	FailoverUnhealthy
	FailoverCircuitOpen
)

var failoverNames = [...]string{NoFailover: "", FailoverUnhealthy: "unhealthy", FailoverCircuitOpen: "circuit_open"}

func (f FailoverReason) String() string { return failoverNames[f] }

// Availability of one candidate placement at decision time.
type Availability uint8

const (
	Available Availability = iota
	Unhealthy
	CircuitOpen
)

// Table is a config compiled for lookups: placement names in a fixed order,
// routes resolved to indexes and each placement's candidate list
// precomputed.
type Table struct {
	// Names are the placement names, sorted; an index into Names is a placement.
	Names []string
	// Default is the index of default_placement.
	Default int
	routes  map[string]route
	// candidates[i] is the visiting order when placement i is the primary.
	candidates [][]int
	kinds      []Reason
}

type route struct {
	placement int
	reason    Reason
}

// Compile builds the lookup table of a validated config.
func Compile(cfg *config.Config) *Table {
	t := &Table{Names: make([]string, 0, len(cfg.Placements))}
	for name := range cfg.Placements {
		t.Names = append(t.Names, name)
	}
	sort.Strings(t.Names)
	index := make(map[string]int, len(t.Names))
	for i, name := range t.Names {
		index[name] = i
	}
	t.Default = index[cfg.DefaultPlacement]
	t.kinds = make([]Reason, len(t.Names))
	for i, name := range t.Names {
		t.kinds[i] = kindReason(cfg.Placements[name].Kind)
	}
	t.routes = make(map[string]route, len(cfg.Routes))
	for key, name := range cfg.Routes {
		i := index[name]
		t.routes[key] = route{placement: i, reason: t.kinds[i]}
	}
	t.candidates = make([][]int, len(t.Names))
	for i, name := range t.Names {
		t.candidates[i] = candidateOrder(cfg, index, name)
	}
	return t
}

func kindReason(kind string) Reason {
	if kind == config.KindDedicated {
		return ReasonDedicated
	}
	return ReasonShared
}

// candidateOrder is the primary, then its fallback chain, then the default
// placement, each at most once (contract section 2, rule 4).
func candidateOrder(cfg *config.Config, index map[string]int, primary string) []int {
	var order []int
	seen := make(map[string]bool)
	for name := primary; name != "" && !seen[name]; name = cfg.Placements[name].Fallback {
		seen[name] = true
		order = append(order, index[name])
	}
	if !seen[cfg.DefaultPlacement] {
		order = append(order, index[cfg.DefaultPlacement])
	}
	return order
}

// Route maps a routing key to its primary placement and the reason: a key
// in routes goes to its placement with the placement's kind as reason, any
// other key to default_placement with reason default. The key must be
// non-empty; the caller answers 400 missing_routing_key before routing.
func (t *Table) Route(key string) (placement int, reason Reason) {
	if r, ok := t.routes[key]; ok {
		return r.placement, r.reason
	}
	return t.Default, ReasonDefault
}

// Candidates is the visiting order for a primary placement.
func (t *Table) Candidates(primary int) []int { return t.candidates[primary] }

// Select visits the candidates in order and returns the first available
// one. available is called at most once per candidate, in order, and not
// after the first available one: the router's check takes a breaker
// permit, so it must only be asked about the placement it will use.
// failover is why the primary was skipped (NoFailover when it serves);
// ok is false when no candidate is available.
func Select(candidates []int, available func(placement int) Availability) (serving int, failover FailoverReason, ok bool) {
	for i, p := range candidates {
		a := available(p)
		if i == 0 {
			failover = failoverOf(a)
		}
		if a == Available {
			return p, failover, true
		}
	}
	return -1, failover, false
}

func failoverOf(a Availability) FailoverReason {
	switch a {
	case Unhealthy:
		return FailoverUnhealthy
	case CircuitOpen:
		return FailoverCircuitOpen
	}
	return NoFailover
}
