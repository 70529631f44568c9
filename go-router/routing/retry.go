package routing

import "net/http"

// Outcome classifies how one upstream attempt ended.
type Outcome uint8

const (
	// OutcomeResponse: a response head arrived whose status is not 502/503/504
	// (it may still be another 5xx).
	OutcomeResponse Outcome = iota
	// OutcomeRetryableStatus: a 502, 503 or 504 response head arrived.
	OutcomeRetryableStatus
	// OutcomeConnectFailure: no connection to the upstream could be made
	// (refused, unreachable, connect timeout); nothing was sent.
	OutcomeConnectFailure
	// OutcomeTimeout: the response head did not arrive within the
	// response-header timeout.
	OutcomeTimeout
	// OutcomeBroken: the connection failed after the request was sent
	// (reset, closed without an answer).
	OutcomeBroken
)

// OutcomeOfStatus classifies a received response head.
func OutcomeOfStatus(status int) Outcome {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return OutcomeRetryableStatus
	}
	return OutcomeResponse
}

// IsIdempotent reports whether the contract lets a request with this method
// be replayed after the upstream may have seen it. RFC 9110 §9.2.2 also
// calls TRACE idempotent; the contract's list leaves it out.
func IsIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// MayRetry reports whether an attempt that ended in outcome may be followed
// by another one (contract section 2, rule 7). A connect failure sent
// nothing, so any method may be retried as long as no body byte was
// consumed; anything the upstream may have acted on is retried only for an
// idempotent method without a body. A broken connection is treated like a
// 502 from the upstream.
func MayRetry(outcome Outcome, method string, hasBody, bodyConsumed bool) bool {
	switch outcome {
	case OutcomeConnectFailure:
		return !bodyConsumed
	case OutcomeRetryableStatus, OutcomeTimeout, OutcomeBroken:
		return !hasBody && IsIdempotent(method)
	}
	return false
}

// IsBreakerFailure reports whether an attempt counts as a failure for the
// circuit breaker (contract section 2, rule 8): a connect failure, a
// timeout or any 5xx. A broken connection counts like a 5xx.
func IsBreakerFailure(outcome Outcome, status int) bool {
	switch outcome {
	case OutcomeConnectFailure, OutcomeTimeout, OutcomeBroken, OutcomeRetryableStatus:
		return true
	}
	return status >= 500
}
