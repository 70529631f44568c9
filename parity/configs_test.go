package parity

// doc is a config document (or a part of one) as the tests write it.
type doc = map[string]any

// configDoc assembles a document; routes may be nil.
func configDoc(version, defaultPlacement string, routes map[string]string, placements doc) doc {
	d := doc{"version": version, "default_placement": defaultPlacement, "placements": placements}
	if routes != nil {
		d["routes"] = routes
	}
	return d
}

// placement is one placement: kind, endpoint and any optional settings.
func placement(kind, endpoint string, settings doc) doc {
	p := doc{"kind": kind, "endpoint": endpoint}
	for k, v := range settings {
		p[k] = v
	}
	return p
}

func healthCheck(intervalMs, timeoutMs, unhealthy, healthy int) doc {
	return doc{"path": "/health", "interval_ms": intervalMs, "timeout_ms": timeoutMs,
		"unhealthy_threshold": unhealthy, "healthy_threshold": healthy}
}

func breaker(failureThreshold, openMs int) doc {
	return doc{"failure_threshold": failureThreshold, "open_ms": openMs}
}

func rateLimit(rps float64, burst int, per string) doc {
	return doc{"requests_per_second": rps, "burst": burst, "per": per}
}

func retry(maxAttempts int) doc { return doc{"max_attempts": maxAttempts} }
