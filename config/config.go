// Package config is the one cellbench config schema: parsing, strict
// validation and the defaults every component applies. The Go router, the
// control plane, the mock backends and the harness all use it; the Pingora
// router implements the same rules and is held to them by the shared vectors
// in testdata/.
package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxDocumentBytes is the largest config document accepted (16 MiB).
const MaxDocumentBytes = 16 << 20

// Defaults applied where a document leaves a setting out.
const (
	DefaultConnectTimeout        = 1000 * time.Millisecond
	DefaultResponseHeaderTimeout = 15000 * time.Millisecond
	// DefaultResponseBodyIdleTimeout is nginx's proxy_read_timeout (60 s
	// between two reads of an upstream response).
	DefaultResponseBodyIdleTimeout = 60000 * time.Millisecond
	DefaultMaxAttempts             = 1
)

// Placement kinds; the kind is also the route reason of a matched key.
const (
	KindShared    = "shared"
	KindDedicated = "dedicated"
)

// Rate limit scopes.
const (
	PerRoutingKey = "routing_key"
	PerPlacement  = "placement"
)

// Config is one validated config document. Treat it as immutable once
// Parse has returned it: routers share it between goroutines.
type Config struct {
	Version          string                `json:"version"`
	DefaultPlacement string                `json:"default_placement"`
	Routes           map[string]string     `json:"routes"`
	Placements       map[string]*Placement `json:"placements"`
}

// Placement is a named upstream cell and the policies that guard it.
type Placement struct {
	Kind                string          `json:"kind"`
	Endpoint            string          `json:"endpoint"`
	Fallback            string          `json:"fallback,omitempty"`
	Timeouts            *Timeouts       `json:"timeouts,omitempty"`
	HealthCheck         *HealthCheck    `json:"health_check,omitempty"`
	CircuitBreaker      *CircuitBreaker `json:"circuit_breaker,omitempty"`
	RateLimit           *RateLimit      `json:"rate_limit,omitempty"`
	Retry               *Retry          `json:"retry,omitempty"`
	ConcurrencyLimit    int64           `json:"concurrency_limit,omitempty"`
	MaxRequestBodyBytes int64           `json:"max_request_body_bytes,omitempty"`
}

// Timeouts are the only sub-object whose fields are individually optional:
// an absent field takes its default.
type Timeouts struct {
	ConnectMs          *int64 `json:"connect_ms,omitempty"`
	ResponseHeaderMs   *int64 `json:"response_header_ms,omitempty"`
	ResponseBodyIdleMs *int64 `json:"response_body_idle_ms,omitempty"`
}

// HealthCheck configures the active probe; every field is required.
type HealthCheck struct {
	Path               string `json:"path"`
	IntervalMs         int64  `json:"interval_ms"`
	TimeoutMs          int64  `json:"timeout_ms"`
	UnhealthyThreshold int64  `json:"unhealthy_threshold"`
	HealthyThreshold   int64  `json:"healthy_threshold"`
}

// CircuitBreaker configures the per-placement breaker; every field is required.
type CircuitBreaker struct {
	FailureThreshold int64 `json:"failure_threshold"`
	OpenMs           int64 `json:"open_ms"`
}

// RateLimit configures admission on the primary placement; every field is required.
type RateLimit struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int64   `json:"burst"`
	Per               string  `json:"per"`
}

// Retry configures upstream attempts; max_attempts is required.
type Retry struct {
	MaxAttempts int64 `json:"max_attempts"`
}

// ConnectTimeout is the effective connect timeout.
func (p *Placement) ConnectTimeout() time.Duration {
	if p.Timeouts != nil && p.Timeouts.ConnectMs != nil {
		return time.Duration(*p.Timeouts.ConnectMs) * time.Millisecond
	}
	return DefaultConnectTimeout
}

// ResponseHeaderTimeout is the effective time allowed from sending a request
// to receiving the response head.
func (p *Placement) ResponseHeaderTimeout() time.Duration {
	if p.Timeouts != nil && p.Timeouts.ResponseHeaderMs != nil {
		return time.Duration(*p.Timeouts.ResponseHeaderMs) * time.Millisecond
	}
	return DefaultResponseHeaderTimeout
}

// ResponseBodyIdleTimeout is the effective longest wait for the next piece
// of an upstream response body once its head has arrived.
func (p *Placement) ResponseBodyIdleTimeout() time.Duration {
	if p.Timeouts != nil && p.Timeouts.ResponseBodyIdleMs != nil {
		return time.Duration(*p.Timeouts.ResponseBodyIdleMs) * time.Millisecond
	}
	return DefaultResponseBodyIdleTimeout
}

// MaxAttempts is the effective number of upstream attempts (1 = no retry).
func (p *Placement) MaxAttempts() int {
	if p.Retry != nil {
		return int(p.Retry.MaxAttempts)
	}
	return DefaultMaxAttempts
}

// Parse decodes and validates a document. A rejection is always an *Error
// whose Code is one of the contract's error codes.
func Parse(doc []byte) (*Config, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, errorf(CodeParseError, "document is %d bytes, more than the %d allowed", len(doc), MaxDocumentBytes)
	}
	if err := checkStrictJSON(doc); err != nil {
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal(doc, &cfg); err != nil {
		// checkStrictJSON has already matched the document to the types.
		return nil, errorf(CodeParseError, "%s", trimJSONPrefix(err.Error()))
	}
	if cfg.Routes == nil {
		cfg.Routes = map[string]string{} // absent and empty mean the same
	}
	if err := Validate(&cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Marshal renders a config as indented JSON (what /debug/config and the
// control plane send).
func Marshal(cfg *Config) ([]byte, error) {
	return json.MarshalIndent(cfg, "", "  ")
}

func (c *Config) String() string {
	return fmt.Sprintf("config %q (%d placements, %d routes)", c.Version, len(c.Placements), len(c.Routes))
}
