package proxy

import (
	"net"
	"net/http"
	"strings"

	"cellbench/go-router/h1"
)

// Fixed values of the headers the router adds (contract section 3).
var (
	viaValue           = "1.1 cellbench"
	forwardedProtoHTTP = []string{"http"}
	emptyUserAgent     = []string{""} // stops net/http from inventing one
	teTrailers         = []string{"trailers"}
)

// upstreamHeader builds the header sent upstream: the client's end-to-end
// fields plus the forwarding fields. The client's Host travels as
// Request.Host, not as a field.
func upstreamHeader(r *http.Request, requestID string) http.Header {
	h := make(http.Header, len(r.Header)+6)
	h1.CopyEndToEnd(h, r.Header)
	if h1.AsksForTrailers(r.Header["Te"]) {
		h["Te"] = teTrailers
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = emptyUserAgent
	}
	// One backing array for the four per-request values: one allocation
	// instead of four. Capacity-limited slices keep an append by anyone
	// from writing into a neighbour.
	values := [...]string{requestID, appendList(r.Header["X-Forwarded-For"], clientIP(r.RemoteAddr)), r.Host, appendList(r.Header["Via"], viaValue)}
	shared := values[:]
	h["X-Request-Id"] = shared[0:1:1]
	h["X-Forwarded-For"] = shared[1:2:2]
	h["X-Forwarded-Host"] = shared[2:3:3]
	h["Via"] = shared[3:4:4]
	h["X-Forwarded-Proto"] = forwardedProtoHTTP
	return h
}

// appendList appends one element to a comma-separated list field that may
// arrive as several lines (RFC 9110 §5.3).
func appendList(existing []string, value string) string {
	switch len(existing) {
	case 0:
		return value
	case 1:
		return existing[0] + ", " + value
	}
	return strings.Join(existing, ", ") + ", " + value
}

// clientIP is the peer address without its port.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}
