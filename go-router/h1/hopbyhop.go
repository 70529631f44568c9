package h1

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHopHeaders are the fields that describe one connection, not the
// message, so a proxy must not forward them (RFC 9110 §7.6.1). Each is in
// canonical form so the removal is a plain map delete.
var hopByHopHeaders = []string{
	"Connection",          // RFC 9110 §7.6.1
	"Keep-Alive",          // RFC 9112 §9.3 / RFC 2068 §19.7.1, listed in RFC 9110 §7.6.1
	"Proxy-Connection",    // non-standard, still sent by old clients (RFC 9110 §7.6.1)
	"Proxy-Authenticate",  // RFC 9110 §11.7.1: answers this proxy, not the origin
	"Proxy-Authorization", // RFC 9110 §11.7.2: credentials for this proxy
	"Te",                  // RFC 9110 §10.1.4; "trailers" is re-added by the caller
	"Trailer",             // RFC 9110 §6.6.2; trailers are re-announced by the proxy itself
	"Transfer-Encoding",   // RFC 9112 §6.1: the proxy re-frames the body
	"Upgrade",             // RFC 9110 §7.8: protocol switches are per connection
}

// isHopByHop reports whether a canonical header name is hop-by-hop either
// by the fixed list or because a Connection field names it.
func isHopByHop(name string, connection []string) bool {
	for _, h := range hopByHopHeaders {
		if name == h {
			return true
		}
	}
	for _, v := range connection {
		for token := range strings.SplitSeq(v, ",") {
			if token = textproto.TrimString(token); token != "" && http.CanonicalHeaderKey(token) == name {
				return true
			}
		}
	}
	return false
}

// CopyEndToEnd copies every header of src that is not hop-by-hop into dst.
// Value slices are shared, not copied: neither side appends to them (the
// proxy only replaces whole fields), and the copy is on every request.
func CopyEndToEnd(dst, src http.Header) {
	connection := src["Connection"]
	for name, values := range src {
		if isHopByHop(name, connection) {
			continue
		}
		dst[name] = values
	}
}

// AsksForTrailers reports whether a TE field contains the "trailers" token,
// the one TE value a proxy forwards (RFC 9110 §10.1.4).
func AsksForTrailers(te []string) bool {
	for _, v := range te {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(token), "trailers") {
				return true
			}
		}
	}
	return false
}
