package snapshot

import (
	"cellbench/config"
	"cellbench/go-router/resilience"
	"cellbench/go-router/upstream"
)

// carryOver builds the runtime of placement name for its new settings,
// keeping what still fits from old (nil for a new placement). It returns
// the upstreams no longer used.
//
// With the endpoint unchanged: health status and the in-flight count are
// always kept; the health checker restarts only if health_check changed;
// breaker and limiter are kept while their settings are equal (a changed
// breaker setting starts a new, closed breaker); the upstream is replaced
// when a timeout changes. A new endpoint starts from scratch.
func (s *SnapshotStore) carryOver(name string, pc *config.Placement, old *PlacementRuntime) (*PlacementRuntime, []*upstream.Upstream) {
	var retired []*upstream.Upstream
	if old != nil && old.endpoint != pc.Endpoint {
		retired = old.teardown()
		old = nil
	}
	rt := &PlacementRuntime{endpoint: pc.Endpoint}
	if old == nil {
		rt.health = &resilience.Health{}
		rt.concurrency = &resilience.Concurrency{}
	} else {
		rt.health, rt.concurrency = old.health, old.concurrency
	}

	// Health checker: restarted when its settings change, status kept.
	if old != nil && old.checker != nil && (pc.HealthCheck == nil || *pc.HealthCheck != old.checker.Settings()) {
		old.checker.Close()
	} else if old != nil {
		rt.checker = old.checker
	}
	if pc.HealthCheck == nil {
		rt.checker = nil
		if rt.health.Reset() {
			s.healthChanged(name, "unhealthy", "healthy")
		}
	} else if rt.checker == nil {
		rt.checker = resilience.StartChecker(s.life, s.probeClient, name, pc.Endpoint, *pc.HealthCheck, rt.health, s.healthChanged)
	}

	// Breaker: kept while its settings are unchanged.
	switch {
	case pc.CircuitBreaker == nil:
	case old != nil && old.breaker != nil && old.breaker.Settings() == *pc.CircuitBreaker:
		rt.breaker = old.breaker
	default:
		rt.breaker = resilience.NewBreaker(name, *pc.CircuitBreaker, s.circuitChanged)
	}

	// Rate limiter: kept while its settings are unchanged.
	switch {
	case old != nil && old.limiter != nil && pc.RateLimit != nil && old.limiter.Settings() == *pc.RateLimit:
		rt.limiter = old.limiter
	case pc.RateLimit != nil:
		rt.limiter = resilience.NewRateLimiter(*pc.RateLimit)
	}
	if old != nil && old.limiter != nil && old.limiter != rt.limiter {
		old.limiter.Close()
	}

	// Upstream: kept while endpoint and timeouts are unchanged.
	if old != nil && old.upstream.SameAs(pc) {
		rt.upstream = old.upstream
	} else {
		rt.upstream = upstream.New(pc, s.engine)
		if old != nil {
			retired = append(retired, old.upstream)
		}
	}
	return rt, retired
}

// teardown stops everything a removed placement runs and returns its upstream.
func (rt *PlacementRuntime) teardown() []*upstream.Upstream {
	if rt.checker != nil {
		rt.checker.Close()
	}
	if rt.limiter != nil {
		rt.limiter.Close()
	}
	return []*upstream.Upstream{rt.upstream}
}

func (s *SnapshotStore) healthChanged(name, from, to string) {
	s.events.Info("health_changed", "placement", name, "from", from, "to", to)
}

func (s *SnapshotStore) circuitChanged(name string, from, to resilience.CircuitState) {
	s.events.Info("circuit_changed", "placement", name, "from", from.String(), "to", to.String())
}
