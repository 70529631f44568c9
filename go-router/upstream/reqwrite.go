package upstream

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
)

// errBadHeaderValue refuses to send a field value that would break the
// request framing; net/http's server never produces one, so it only guards
// against the router's own bugs.
var errBadHeaderValue = errors.New("header value contains CR or LF")

// writeRequestHead writes the head of a bodiless request in HTTP/1.1 wire
// format. It replaces http.Request.Write on the pooled path: that one
// formats the request line with fmt and sorts the header keys, the two
// largest costs of writing a request. The output follows the same rules:
// Host from Request.Host, no empty User-Agent, and "Content-Length: 0" for
// every method but GET and HEAD (net/http's transferWriter).
func writeRequestHead(w *bufio.Writer, req *http.Request) error {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(requestTarget(req))
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\n")
	for name, values := range req.Header {
		switch name {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // framing is the writer's, Host was written above
		}
		for _, v := range values {
			if v == "" && name == "User-Agent" {
				continue
			}
			if strings.ContainsAny(v, "\r\n") {
				return errBadHeaderValue
			}
			w.WriteString(name)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.WriteString("Content-Length: 0\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

// requestTarget is the origin-form target: the client's own when it sent
// one, otherwise rebuilt from the URL (absolute-form requests).
func requestTarget(req *http.Request) string {
	if t := req.RequestURI; t != "" && t[0] == '/' {
		return t
	}
	return req.URL.RequestURI()
}
