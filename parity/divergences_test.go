package parity

import (
	"net/http"
	"testing"
)

// divergence is a behaviour the lead has accepted from one router in place
// of the contract's, because that router cannot do otherwise (its HTTP layer
// answers before any router code runs). The case still asserts the
// alternative exactly; every router and case not listed stays strict.
// docs/parity.md explains each entry under its anchor.
type divergence struct {
	router  string // "go" or "pingora"
	test    string // the full test name, as t.Name() reports it
	status  int    // the exact status asserted instead of the contract's
	code    string // the router-made error code asserted with it, if any
	instead string // what is asserted instead, for the log
	why     string // the reason, with its docs/parity.md anchor
}

// divergences is the one table of documented divergences.
var divergences = []divergence{
	{
		router: "pingora", test: "TestWireRules/head_over_64_KiB_is_431/long_request_line",
		status:  http.StatusBadRequest,
		instead: "400 from the HTTP layer, cell never contacted, router alive",
		why:     "Pingora's parser refuses a request target over ~64 KiB before any hook (docs/parity.md#pingora-long-request-target)",
	},
	{
		router: "pingora", test: "TestWireRules/head_under_64_KiB_passes/300_short_fields",
		status:  http.StatusBadRequest,
		instead: "400 from the HTTP layer, cell never contacted, router alive",
		why:     "pingora-core parses at most 256 header fields (MAX_HEADERS) (docs/parity.md#pingora-256-header-fields)",
	},
	{
		router: "pingora", test: "TestHeaders/a_response_with_many_header_fields_passes",
		status:  http.StatusBadGateway,
		code:    "upstream_error",
		instead: "502 upstream_error, a router-made JSON error after one attempt",
		why:     "pingora-core's HTTP/1 client parses at most 256 header fields (docs/parity.md#pingora-256-header-fields)",
	},
	{
		router: "go", test: "TestWireRules/only_a_single_final_chunked_coding_is_accepted/unknown_coding",
		status:  http.StatusNotImplemented,
		instead: "501 from net/http, connection closed, cell never contacted",
		why:     "net/http refuses a Transfer-Encoding it does not know with 501 before any handler (docs/parity.md#go-non-final-chunked)",
	},
	{
		router: "go", test: "TestWireRules/only_a_single_final_chunked_coding_is_accepted/chunked_then_other",
		status:  http.StatusNotImplemented,
		instead: "501 from net/http, connection closed, cell never contacted",
		why:     "net/http refuses a Transfer-Encoding it does not know with 501 before any handler (docs/parity.md#go-non-final-chunked)",
	},
	{
		router: "pingora", test: "TestConnectionAfterRouterErrors/an_upstream_connect_error_keeps_the_connection",
		status:  http.StatusBadGateway,
		code:    "upstream_connect_error",
		instead: "the 502 says Connection: close and the connection closes",
		why:     "Pingora does not reuse a client connection after a proxy error (docs/parity.md#pingora-close-after-proxy-error)",
	},
}

// documentedDivergence returns the table entry for the router under test in
// the running test, and logs it; ok is false for every other case, which
// must then meet the contract exactly.
func documentedDivergence(t testing.TB) (d divergence, ok bool) {
	t.Helper()
	for _, d := range divergences {
		if d.router == routerName && d.test == t.Name() {
			t.Logf("documented divergence: %s %s: %s instead of the contract's answer; %s", d.router, d.test, d.instead, d.why)
			return d, true
		}
	}
	return divergence{}, false
}

// TestDivergenceTable keeps the table honest: every entry names a router
// and a status, and no case is listed twice.
func TestDivergenceTable(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range divergences {
		if d.router != "go" && d.router != "pingora" || d.status == 0 || d.test == "" || d.why == "" {
			t.Errorf("incomplete entry %+v", d)
		}
		if seen[d.router+" "+d.test] {
			t.Errorf("%s %s listed twice", d.router, d.test)
		}
		seen[d.router+" "+d.test] = true
	}
}
