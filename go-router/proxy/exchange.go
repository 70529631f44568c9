package proxy

import (
	"net/http"
	"strconv"
	"time"

	"cellbench/go-router/engine"
	"cellbench/go-router/obs"
	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/go-router/snapshot"
)

// Exchange is what the router learned about one request on its way
// through the handler: it fills the explainability headers, the access
// log line and the metrics. It lives on the handler's stack.
type Exchange struct {
	start      time.Time
	snap       *snapshot.Snapshot
	requestID  string
	routingKey string
	routed     bool // reason is known
	reason     routing.Reason
	failover   routing.FailoverReason
	primary    *snapshot.Placement // nil before routing
	serving    *snapshot.Placement // nil unless a placement was selected
	// circuit is X-Circuit-State once the serving placement is known.
	circuit    resilience.CircuitState
	hasCircuit bool
	attempts   int
	upstream   time.Duration // last attempt: request sent to response head
	retryAfter int
	status     int
	errCode    ErrorCode
	bytesOut   int64
	// wroteHeader is set once the response head is committed.
	wroteHeader bool
}

// Constant header values, shared between responses: a header map only ever
// gets whole values replaced, never appended to in place.
var (
	routerHeader    = []string{engine.RouterName}
	retryAfterOne   = []string{"1"}
	connectionClose = []string{"close"}
	reasonHeaders   = [...][]string{routing.ReasonDefault: {"default"}, routing.ReasonShared: {"shared"}, routing.ReasonDedicated: {"dedicated"}}
	failoverHeaders = [...][]string{routing.FailoverUnhealthy: {"unhealthy"}, routing.FailoverCircuitOpen: {"circuit_open"}}
	circuitHeaders  = [...][]string{resilience.Closed: {"closed"}, resilience.HalfOpen: {"half_open"}, resilience.Open: {"open"}}
	attemptsHeaders = func() (h [8][]string) {
		for i := range h {
			h[i] = []string{strconv.Itoa(i)}
		}
		return h
	}()
)

// setHeaders sets the router's explainability headers (contract section 3)
// that are known at this point, replacing any upstream field of the same name.
func (ex *Exchange) setHeaders(h http.Header) {
	// X-Request-Id and Server-Timing share one backing array.
	values := make([]string, 2)
	values[0] = ex.requestID
	h["X-Request-Id"] = values[0:1:1]
	h["X-Router"] = routerHeader
	h["X-Config-Version"] = ex.snap.VersionHeader
	if ex.routed {
		h["X-Route-Reason"] = reasonHeaders[ex.reason]
	}
	if ex.failover != routing.NoFailover {
		h["X-Failover-Reason"] = failoverHeaders[ex.failover]
	}
	if ex.serving != nil {
		h["X-Routed-To"] = ex.serving.RoutedToHeader
	}
	if ex.hasCircuit {
		h["X-Circuit-State"] = circuitHeaders[ex.circuit]
	}
	if ex.attempts > 0 {
		h["X-Upstream-Attempts"] = attemptsHeaders[ex.attempts]
		var buf [40]byte
		b := append(buf[:0], "upstream;dur="...)
		b = strconv.AppendFloat(b, obs.Milliseconds(ex.upstream), 'f', 3, 64)
		values[1] = string(b)
		h["Server-Timing"] = values[1:2:2]
	}
	if ex.retryAfter > 0 {
		if ex.retryAfter == 1 {
			h["Retry-After"] = retryAfterOne
		} else {
			h["Retry-After"] = []string{strconv.Itoa(ex.retryAfter)}
		}
	}
}

// labelPlacement is the placement a request is counted under: the one that
// served, else the primary, else none (no routing key).
func (ex *Exchange) labelPlacement() *snapshot.Placement {
	if ex.serving != nil {
		return ex.serving
	}
	return ex.primary
}
