// Package h1 holds the HTTP/1.1 field rules go-router shares between its
// sides: those of its own head parsers, the fast path's request heads
// (go-router/server) and the pooled upstream client's response heads
// (go-router/upstream), and the hop-by-hop fields a proxy drops
// (hopbyhop.go). The parsers take only the plain case and leave everything
// else to net/http; the rules here are the ones net/http applies, so that
// a head both accept reads the same.
package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
)

// ParseFields parses the field lines of a head. block is what follows the
// start line's CRLF, up to and including the CRLF of the empty line that
// ends the head. Every line must end in CRLF, with a token name, a colon
// right after it and a value without control characters (optional
// whitespace around it is dropped); a line starting with space or tab
// (obs-fold) has no token before its colon and is refused. Names are
// canonicalised as textproto does, and repeated fields keep their order.
//
// take sees every field first: store false keeps a field out of the map
// (Host, for a request), ok false refuses the whole head. The values of
// fields seen once share one backing array.
func ParseFields(block string, take func(name, value string) (store, ok bool)) (http.Header, bool) {
	fields := max(strings.Count(block, "\r\n")-1, 0) // a malformed block may have none
	header := make(http.Header, fields)
	values := make([]string, 0, fields)
	for {
		line, rest, found := strings.Cut(block, "\r\n")
		if !found {
			return nil, false
		}
		block = rest
		if line == "" {
			return header, block == ""
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !ValidToken(name) {
			return nil, false
		}
		value = strings.Trim(value, " \t")
		if !ValidFieldValue(value) {
			return nil, false
		}
		if !isCanonical(name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		store, ok := take(name, value)
		if !ok {
			return nil, false
		}
		if !store {
			continue
		}
		if prior, ok := header[name]; ok {
			header[name] = append(prior, value)
			continue
		}
		values = append(values, value)
		header[name] = values[len(values)-1 : len(values) : len(values)]
	}
}

// CompleteHead is the complete head at the start of br's buffer, up to and
// including its empty line, nil if there is none yet. Nothing is read.
func CompleteHead(br *bufio.Reader) []byte {
	buf, _ := br.Peek(br.Buffered())
	if n := headLength(buf); n > 0 {
		return buf[:n]
	}
	return nil
}

// headLength is the length of the head at the start of buf, up to its
// first empty line, 0 if there is none yet. net/http also ends a head on
// a bare LF, so such a head has to be seen as complete (the parsers then
// refuse it and net/http reads it) rather than waited on until a timeout.
func headLength(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch rest := buf[i:]; {
		case len(rest) >= 1 && rest[0] == '\n':
			return i + 1
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			return i + 2
		}
	}
}

// FixPragmaCacheControl is net/http's: a "Pragma: no-cache" without a
// Cache-Control field implies "Cache-Control: no-cache" (RFC 7234 §5.4).
func FixPragmaCacheControl(header http.Header) {
	if p := header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := header["Cache-Control"]; !ok {
			header["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// isCanonical reports whether name is already in canonical form (each
// word capitalised, the rest lower case), so that it can be the map key
// without allocating a new string.
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

// ValidToken is RFC 9110 token: a field name or a method.
func ValidToken(s string) bool { return alnumOr(s, "!#$%&'*+-.^_`|~") }

// ValidHost is a conservative reg-name / IPv4 / [IPv6] with optional port;
// a parser hands anything else to net/http's own check.
func ValidHost(h string) bool { return alnumOr(h, "-._:[]") }

// alnumOr reports whether s is non-empty and made only of ASCII letters,
// digits and the bytes in extra.
func alnumOr(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(extra, b) >= 0) {
			return false
		}
	}
	return true
}

// ValidFieldValue rejects control characters other than horizontal tab,
// as net/http's server does (httpguts.ValidHeaderFieldValue).
func ValidFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated list holds token, ignoring
// case.
func HasToken(list, token string) bool {
	for part := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// ContainsToken reports whether any of the lists holds token
// (httpguts.HeaderValuesContainsToken).
func ContainsToken(lists []string, token string) bool {
	for _, list := range lists {
		if HasToken(list, token) {
			return true
		}
	}
	return false
}
