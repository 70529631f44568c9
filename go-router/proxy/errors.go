package proxy

import (
	"net/http"
	"strconv"

	"cellbench/internal/jsonstr"
)

// ErrorCode is an answer the router makes itself (contract sections 2 and
// 3): its status, its code in the JSON body and the access log, and
// whether the connection closes after it. The contract does not name
// upstream_error (the upstream broke the connection after the request was
// sent: reset, or closed without an answer), bad_request for a body that
// could not be read (e.g. a malformed chunk), method_not_supported
// (CONNECT) and internal_error (a recovered handler panic).
type ErrorCode uint8

const (
	noError ErrorCode = iota
	MissingRoutingKey
	RateLimited
	NoAvailablePlacement
	ConcurrencyLimited
	BodyTooLarge
	UpstreamConnectError
	UpstreamTimeout
	UpstreamError
	InternalError
	// BadTarget: a request target a reverse proxy does not serve; what
	// follows it on the connection cannot be trusted.
	BadTarget
	// UnreadableBody: reading the client's body failed.
	UnreadableBody
	MethodNotSupported
	// RequestTimeout: the client paused its body longer than the client
	// body idle timeout.
	RequestTimeout
	// ClientClosed is only logged: nobody is left to answer. Its status is
	// nginx's 499, never sent.
	ClientClosed
)

var errorCodes = [...]struct {
	status int
	code   string
	closes bool
}{
	noError:              {0, "", false},
	MissingRoutingKey:    {http.StatusBadRequest, "missing_routing_key", false},
	RateLimited:          {http.StatusTooManyRequests, "rate_limited", false},
	NoAvailablePlacement: {http.StatusServiceUnavailable, "no_available_placement", false},
	ConcurrencyLimited:   {http.StatusServiceUnavailable, "concurrency_limited", false},
	BodyTooLarge:         {http.StatusRequestEntityTooLarge, "body_too_large", true},
	UpstreamConnectError: {http.StatusBadGateway, "upstream_connect_error", false},
	UpstreamTimeout:      {http.StatusGatewayTimeout, "upstream_timeout", false},
	UpstreamError:        {http.StatusBadGateway, "upstream_error", false},
	InternalError:        {http.StatusInternalServerError, "internal_error", false},
	BadTarget:            {http.StatusBadRequest, "bad_request", true},
	UnreadableBody:       {http.StatusBadRequest, "bad_request", true},
	MethodNotSupported:   {http.StatusNotImplemented, "method_not_supported", true},
	RequestTimeout:       {http.StatusRequestTimeout, "request_timeout", true},
	ClientClosed:         {499, "client_closed", false},
}

// Status is the answer's status code.
func (c ErrorCode) Status() int { return errorCodes[c].status }

// String is the code of the JSON body and the access log ("" for none).
func (c ErrorCode) String() string { return errorCodes[c].code }

// ClosesConnection reports whether the connection closes after the answer.
func (c ErrorCode) ClosesConnection() bool { return errorCodes[c].closes }

var jsonContentType = []string{"application/json"}

// respondError answers with a router-made error: the explainability
// headers known so far and the contract's JSON body.
func (rt *Router) respondError(w http.ResponseWriter, ex *Exchange, code ErrorCode, message string) {
	ex.status, ex.errCode = code.Status(), code
	h := w.Header()
	ex.setHeaders(h)
	if code.ClosesConnection() {
		h["Connection"] = connectionClose
	}
	var buf [512]byte
	body := append(buf[:0], `{"error":`...)
	body = jsonstr.Append(body, code.String())
	body = append(body, `,"message":`...)
	body = jsonstr.Append(body, message)
	body = append(body, `,"request_id":`...)
	body = jsonstr.Append(body, ex.requestID)
	body = append(body, '}')
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	ex.wroteHeader = true
	w.WriteHeader(ex.status)
	n, _ := w.Write(body)
	ex.bytesOut += int64(n)
}
