package server

import "bytes"

// foreignFirstLine reports whether buf, the start of a head still
// arriving, already holds a complete first line that is not an HTTP/1.1
// request line: a head the fast path would not take (HTTP/1.0, an
// HTTP/0.9 "GET /", a stray empty line, garbage). Such a connection is
// handed to net/http at once, which answers a malformed line (400) as
// soon as it has it, rather than after a head that may never come.
func foreignFirstLine(buf []byte) bool {
	i := bytes.IndexByte(buf, '\n')
	return i >= 0 && !bytes.HasSuffix(buf[:i], []byte(" HTTP/1.1\r"))
}
