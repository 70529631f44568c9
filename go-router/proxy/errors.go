package proxy

import (
	"net/http"
	"strconv"

	"cellbench/internal/jsonstr"
)

// Error codes of the answers the router makes itself (contract sections 2
// and 3). The contract does not name upstream_error (the upstream broke
// the connection after the request was sent: reset, or closed without an
// answer), bad_request (a request body that could not be read, e.g. a
// malformed chunk), method_not_supported (CONNECT, 501) and internal_error
// (a recovered handler panic).
const (
	codeMissingRoutingKey    = "missing_routing_key"
	codeRateLimited          = "rate_limited"
	codeNoAvailablePlacement = "no_available_placement"
	codeConcurrencyLimited   = "concurrency_limited"
	codeBodyTooLarge         = "body_too_large"
	codeUpstreamConnectError = "upstream_connect_error"
	codeUpstreamTimeout      = "upstream_timeout"
	codeUpstreamError        = "upstream_error"
	codeInternalError        = "internal_error"
	codeBadRequest           = "bad_request"
	codeMethodNotSupported   = "method_not_supported"
	// codeRequestTimeout: the client paused its request body longer than
	// the client body idle timeout (408, connection closed).
	codeRequestTimeout = "request_timeout"
	// codeClientClosed is only logged: nobody is left to answer.
	codeClientClosed = "client_closed"
)

// statusClientClosed is the status logged when the client left before an
// answer (nginx's 499); it is never sent.
const statusClientClosed = 499

var jsonContentType = []string{"application/json"}

// fail answers with a router-made error: the explainability headers known
// so far and the contract's JSON body.
func (rt *Router) fail(w http.ResponseWriter, ex *exchange, status int, code, message string) {
	ex.status, ex.errCode = status, code
	h := w.Header()
	ex.setHeaders(h)
	var buf [512]byte
	body := append(buf[:0], `{"error":`...)
	body = jsonstr.Append(body, code)
	body = append(body, `,"message":`...)
	body = jsonstr.Append(body, message)
	body = append(body, `,"request_id":`...)
	body = jsonstr.Append(body, ex.requestID)
	body = append(body, '}')
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	ex.wroteHeader = true
	w.WriteHeader(status)
	n, _ := w.Write(body)
	ex.bytesOut += int64(n)
}
