package config

import (
	"net"
	"sort"
	"strconv"
	"strings"
)

// Limits on names that end up in headers, logs and metric labels.
const (
	MaxVersionBytes       = 128
	MaxRouteKeyBytes      = 256
	MaxPlacementNameBytes = 64
	MinAttempts           = 1
	MaxAttemptsLimit      = 5
)

// Validate applies the contract's semantic rules to a decoded document.
// Checks run in a fixed order so that a document with several faults is
// rejected with the same code by every implementation: version, placements,
// placement names, default placement, routes (by key, bytewise), then each
// placement (by name, bytewise) field by field in schema order, and last the
// fallback graph.
func Validate(c *Config) error {
	if c.Version == "" || len(c.Version) > MaxVersionBytes || !isVisibleASCII(c.Version) {
		return errorf(CodeVersionMissing, "version must be 1 to %d visible ASCII characters", MaxVersionBytes)
	}
	if len(c.Placements) == 0 {
		return errorf(CodeNoPlacements, "placements must name at least one placement")
	}
	names := sortedKeys(c.Placements)
	for _, name := range names {
		if !IsPlacementName(name) {
			return errorf(CodePlacementNameInvalid, "placement name %q must be 1 to %d characters of A-Z a-z 0-9 . _ -", name, MaxPlacementNameBytes)
		}
	}
	if _, ok := c.Placements[c.DefaultPlacement]; !ok {
		return errorf(CodeDefaultPlacementUnknown, "default_placement %q is not a placement", c.DefaultPlacement)
	}
	for _, key := range sortedKeys(c.Routes) {
		if key == "" || len(key) > MaxRouteKeyBytes || !isVisibleASCII(key) {
			return errorf(CodeRouteKeyInvalid, "route key %q must be 1 to %d visible ASCII characters", key, MaxRouteKeyBytes)
		}
		if _, ok := c.Placements[c.Routes[key]]; !ok {
			return errorf(CodeRoutePlacementUnknown, "route %q names placement %q, which does not exist", key, c.Routes[key])
		}
	}
	for _, name := range names {
		if err := validatePlacement(c, name, c.Placements[name]); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := checkFallbackCycle(c, name); err != nil {
			return err
		}
	}
	return nil
}

func validatePlacement(c *Config, name string, p *Placement) error {
	if p.Kind != KindShared && p.Kind != KindDedicated {
		return errorf(CodeKindInvalid, "placement %q: kind %q must be %q or %q", name, p.Kind, KindShared, KindDedicated)
	}
	if err := ValidateEndpoint(p.Endpoint); err != nil {
		return errorf(CodeEndpointInvalid, "placement %q: endpoint %q: %s", name, p.Endpoint, err.Error())
	}
	// An empty fallback means none, as if the field were absent.
	if p.Fallback != "" {
		if p.Fallback == name {
			return errorf(CodeFallbackUnknown, "placement %q: fallback names the placement itself", name)
		}
		if _, ok := c.Placements[p.Fallback]; !ok {
			return errorf(CodeFallbackUnknown, "placement %q: fallback %q is not a placement", name, p.Fallback)
		}
	}
	if t := p.Timeouts; t != nil {
		for _, f := range []struct {
			field string
			value *int64
		}{{"connect_ms", t.ConnectMs}, {"response_header_ms", t.ResponseHeaderMs}, {"response_body_idle_ms", t.ResponseBodyIdleMs}} {
			if f.value != nil && *f.value <= 0 {
				return errorf(CodeTimeoutsInvalid, "placement %q: timeouts.%s must be a positive integer, got %d", name, f.field, *f.value)
			}
		}
	}
	if h := p.HealthCheck; h != nil {
		switch {
		case !strings.HasPrefix(h.Path, "/"):
			return errorf(CodeHealthCheckInvalid, "placement %q: health_check.path %q must start with /", name, h.Path)
		case h.IntervalMs <= 0 || h.TimeoutMs <= 0:
			return errorf(CodeHealthCheckInvalid, "placement %q: health_check interval_ms and timeout_ms must be positive", name)
		case h.TimeoutMs >= h.IntervalMs:
			return errorf(CodeHealthCheckInvalid, "placement %q: health_check.timeout_ms (%d) must be less than interval_ms (%d)", name, h.TimeoutMs, h.IntervalMs)
		case h.UnhealthyThreshold < 1 || h.HealthyThreshold < 1:
			return errorf(CodeHealthCheckInvalid, "placement %q: health_check thresholds must be at least 1", name)
		}
	}
	if b := p.CircuitBreaker; b != nil && (b.FailureThreshold < 1 || b.OpenMs < 1) {
		return errorf(CodeCircuitBreakerInvalid, "placement %q: circuit_breaker failure_threshold and open_ms must be at least 1", name)
	}
	if r := p.RateLimit; r != nil {
		switch {
		case r.RequestsPerSecond <= 0:
			return errorf(CodeRateLimitInvalid, "placement %q: rate_limit.requests_per_second must be positive", name)
		case r.Burst < 1:
			return errorf(CodeRateLimitInvalid, "placement %q: rate_limit.burst must be at least 1", name)
		case r.Per != PerRoutingKey && r.Per != PerPlacement:
			return errorf(CodeRateLimitInvalid, "placement %q: rate_limit.per %q must be %q or %q", name, r.Per, PerRoutingKey, PerPlacement)
		}
	}
	if r := p.Retry; r != nil && (r.MaxAttempts < MinAttempts || r.MaxAttempts > MaxAttemptsLimit) {
		return errorf(CodeRetryInvalid, "placement %q: retry.max_attempts %d must be between %d and %d", name, r.MaxAttempts, MinAttempts, MaxAttemptsLimit)
	}
	if p.ConcurrencyLimit < 0 || p.MaxRequestBodyBytes < 0 {
		return errorf(CodeLimitInvalid, "placement %q: concurrency_limit and max_request_body_bytes must not be negative", name)
	}
	return nil
}

func checkFallbackCycle(c *Config, start string) error {
	seen := map[string]bool{start: true}
	path := []string{start}
	for next := c.Placements[start].Fallback; next != ""; next = c.Placements[next].Fallback {
		path = append(path, next)
		if seen[next] {
			return errorf(CodeFallbackCycle, "fallback links loop: %s", strings.Join(path, " -> "))
		}
		seen[next] = true
	}
	return nil
}

// ValidateEndpoint accepts exactly "http://HOST:PORT" with an optional
// trailing "/": HOST is a DNS name, an IPv4 address or a bracketed IPv6
// address; PORT is 1-65535 in decimal. The grammar is written out by hand
// rather than through net/url so that the Rust router can apply the very
// same rule (URL parsers differ in what they normalise).
func ValidateEndpoint(endpoint string) error {
	rest, ok := strings.CutPrefix(endpoint, "http://")
	if !ok {
		return simpleError("must start with http:// (TLS and other schemes are not supported)")
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@") {
		return simpleError("must have no userinfo, path, query or fragment")
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return simpleError("must be host:port")
	}
	if !isDecimal(port) || port[0] == '0' || len(port) > 5 {
		return simpleError("port must be 1-65535")
	}
	if n, _ := strconv.Atoi(port); n > 65535 {
		return simpleError("port must be 1-65535")
	}
	if strings.HasPrefix(rest, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil || strings.Contains(host, "%") {
			return simpleError("bracketed host must be an IPv6 address")
		}
		return nil
	}
	if !isHostName(host) {
		return simpleError("host must be a DNS name or IPv4 address")
	}
	return nil
}

type simpleError string

func (e simpleError) Error() string { return string(e) }

func isHostName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}

// IsPlacementName reports whether name is a valid placement name: 1 to
// MaxPlacementNameBytes characters of A-Z a-z 0-9 . _ - (safe in headers,
// log fields and metric labels).
func IsPlacementName(name string) bool {
	if name == "" || len(name) > MaxPlacementNameBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isVisibleASCII reports whether s has only the bytes 0x21-0x7E.
func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
