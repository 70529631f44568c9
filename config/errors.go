package config

import (
	"fmt"
	"strings"
)

// Error codes of a rejected document (contract section 1). The first line of
// every rejection message starts with exactly one of them.
const (
	CodeParseError              = "parse_error"
	CodeUnknownField            = "unknown_field"
	CodeVersionMissing          = "version_missing"
	CodeNoPlacements            = "no_placements"
	CodePlacementNameInvalid    = "placement_name_invalid"
	CodeDefaultPlacementUnknown = "default_placement_unknown"
	CodeRouteKeyInvalid         = "route_key_invalid"
	CodeRoutePlacementUnknown   = "route_placement_unknown"
	CodeKindInvalid             = "kind_invalid"
	CodeEndpointInvalid         = "endpoint_invalid"
	CodeFallbackUnknown         = "fallback_unknown"
	CodeFallbackCycle           = "fallback_cycle"
	CodeTimeoutsInvalid         = "timeouts_invalid"
	CodeHealthCheckInvalid      = "health_check_invalid"
	CodeCircuitBreakerInvalid   = "circuit_breaker_invalid"
	CodeRateLimitInvalid        = "rate_limit_invalid"
	CodeRetryInvalid            = "retry_invalid"
	CodeLimitInvalid            = "limit_invalid"
)

// Codes lists every rejection code, in the order validation checks them.
var Codes = []string{
	CodeParseError, CodeUnknownField, CodeVersionMissing, CodeNoPlacements,
	CodePlacementNameInvalid, CodeDefaultPlacementUnknown, CodeRouteKeyInvalid,
	CodeRoutePlacementUnknown, CodeKindInvalid, CodeEndpointInvalid,
	CodeFallbackUnknown, CodeTimeoutsInvalid, CodeHealthCheckInvalid,
	CodeCircuitBreakerInvalid, CodeRateLimitInvalid, CodeRetryInvalid,
	CodeLimitInvalid, CodeFallbackCycle,
}

// Error is a rejected document: one code and a human explanation.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the contract code of a rejection, or "" for other errors.
func CodeOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	return ""
}

func trimJSONPrefix(msg string) string {
	return strings.TrimPrefix(msg, "json: ")
}
