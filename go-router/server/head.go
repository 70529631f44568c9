package server

import (
	"net/http"
	"net/url"
	"strings"

	"cellbench/go-router/h1"
	"cellbench/go-router/tunedpath"
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
	tunedpath.Mark(tunedpath.RequestHeadParser)
	s := string(head)
	if !strings.HasSuffix(s, "\r\n\r\n") {
		return nil
	}
	line, rest, _ := strings.Cut(s, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !h1.ValidToken(method) || method == http.MethodConnect ||
		target == "" || target[0] != '/' {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}

	host, hosts := "", 0
	header, ok := h1.ParseFields(rest, func(name, value string) (store, ok bool) {
		switch name {
		case "Host":
			host, hosts = value, hosts+1
			return false, true
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return false, false
		}
		return true, true
	})
	if !ok || hosts != 1 || !h1.ValidHost(host) {
		return nil
	}
	h1.FixPragmaCacheControl(header)
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
		Close:      h1.ContainsToken(header["Connection"], "close"),
	}
}
