package proxy

import "testing"

// Every code has its row, and the codes the contract names keep their
// status and spelling.
func TestErrorCodeTable(t *testing.T) {
	for c := MissingRoutingKey; c <= ClientClosed; c++ {
		if c.Status() == 0 || c.String() == "" {
			t.Errorf("ErrorCode %d has no row", c)
		}
	}
	for _, c := range []struct {
		code   ErrorCode
		status int
		name   string
		closes bool
	}{
		{MissingRoutingKey, 400, "missing_routing_key", false},
		{RateLimited, 429, "rate_limited", false},
		{NoAvailablePlacement, 503, "no_available_placement", false},
		{ConcurrencyLimited, 503, "concurrency_limited", false},
		{BodyTooLarge, 413, "body_too_large", true},
		{UpstreamConnectError, 502, "upstream_connect_error", false},
		{UpstreamTimeout, 504, "upstream_timeout", false},
		{BadTarget, 400, "bad_request", true},
		{UnreadableBody, 400, "bad_request", true},
		{MethodNotSupported, 501, "method_not_supported", true},
		{RequestTimeout, 408, "request_timeout", true},
		{ClientClosed, 499, "client_closed", false},
	} {
		if c.code.Status() != c.status || c.code.String() != c.name || c.code.ClosesConnection() != c.closes {
			t.Errorf("%s: %d %q closes=%v, want %d %q closes=%v", c.name, c.code.Status(), c.code.String(), c.code.ClosesConnection(), c.status, c.name, c.closes)
		}
	}
}
