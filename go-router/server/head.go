package server

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parseHead parses a complete request head (request line, fields, empty
// line) into the Request http.ReadRequest would return, provided the
// request is one the fast path serves: HTTP/1.1; an origin-form target; a
// method other than CONNECT; no body and no protocol switch (no
// Content-Length, Transfer-Encoding, Expect, Upgrade or Trailer field);
// exactly one valid Host; every line ending in CRLF, no obs-fold; field
// names that are tokens and values without control characters (net/http's
// server refuses those too). For anything else it returns nil and the
// connection goes to net/http.Server.
//
// It exists because http.ReadRequest was the largest single cost left on
// the fast path: it allocates a string per line and per value, where this
// makes one string of the whole head and slices it. head_test.go checks
// it against http.ReadRequest, also under fuzzing.
func parseHead(head []byte) *http.Request {
	s := string(head)
	if !strings.HasSuffix(s, "\r\n\r\n") {
		return nil
	}
	line, rest, _ := strings.Cut(s, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !validFieldName(method) || method == http.MethodConnect ||
		target == "" || target[0] != '/' {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}

	fields := strings.Count(rest, "\r\n") - 1 // the last CRLF ends the head
	header := make(http.Header, fields)
	values := make([]string, 0, fields) // one backing array for single values
	host, hosts := "", 0
	for {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validFieldName(name) {
			return nil // also a line starting with space or tab (obs-fold)
		}
		value = strings.Trim(value, " \t")
		if !validFieldValue(value) {
			return nil
		}
		if !isCanonical(name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		switch name {
		case "Host":
			host, hosts = value, hosts+1
			continue
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return nil
		}
		if prior, ok := header[name]; ok {
			header[name] = append(prior, value)
			continue
		}
		values = append(values, value)
		header[name] = values[len(values)-1 : len(values) : len(values)]
	}
	if hosts != 1 || !validHost(host) {
		return nil
	}
	// net/http's fixPragmaCacheControl (RFC 7234 §5.4).
	if p := header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := header["Cache-Control"]; !ok {
			header["Cache-Control"] = []string{"no-cache"}
		}
	}
	return &http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: target,
		Close:      containsToken(header["Connection"], "close"),
	}
}

// isCanonical reports whether name is already in canonical form (each
// word capitalised, the rest lower case), so that it can be used as the
// map key without allocating a new string.
func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// containsToken reports whether any of the comma-separated lists holds
// token, ignoring case (httpguts.HeaderValuesContainsToken).
func containsToken(lists []string, token string) bool {
	for _, list := range lists {
		if hasToken(list, token) {
			return true
		}
	}
	return false
}
