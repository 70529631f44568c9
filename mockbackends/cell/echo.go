package cell

import (
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"
)

// echo is what a cell tells a client about the request it received.
type echo struct {
	cell       string
	method     string
	path       string
	query      string
	header     http.Header
	host       string
	transferTE []string // net/http moves Transfer-Encoding out of Header
	bodyBytes  int64
	bodySHA256 [32]byte
}

// appendEcho renders e as the echo JSON object
// {"cell","method","path","query","headers","body_bytes","body_sha256"}.
// Hand-written instead of encoding/json because the echo is the hot path of
// every benchmark: reflection over a map of slices cost several allocations
// per request, this costs none beyond the sorted key list (pooled by the caller).
func appendEcho(dst []byte, e *echo, keys []string) ([]byte, []string) {
	dst = append(dst, `{"cell":`...)
	dst = appendJSONString(dst, e.cell)
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, e.method)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, e.path)
	dst = append(dst, `,"query":`...)
	dst = appendJSONString(dst, e.query)
	dst = append(dst, `,"headers":{`...)

	keys = keys[:0]
	for k := range e.header {
		keys = append(keys, k)
	}
	// Host and Transfer-Encoding are shown as received even though net/http
	// keeps them outside Header. A client-sent header of the same name
	// cannot exist: the server removes both from Header.
	if e.host != "" {
		keys = append(keys, "Host")
	}
	if len(e.transferTE) > 0 {
		keys = append(keys, "Transfer-Encoding")
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ":["...)
		var values []string
		switch {
		case k == "Host" && e.host != "":
			dst = appendJSONString(dst, e.host)
			dst = append(dst, ']')
			continue
		case k == "Transfer-Encoding" && len(e.transferTE) > 0:
			values = e.transferTE
		default:
			values = e.header[k]
		}
		for j, v := range values {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"body_bytes":`...)
	dst = strconv.AppendInt(dst, e.bodyBytes, 10)
	dst = append(dst, `,"body_sha256":"`...)
	dst = hex.AppendEncode(dst, e.bodySHA256[:])
	dst = append(dst, "\"}\n"...)
	return dst, keys
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259 §7). Invalid UTF-8
// becomes U+FFFD, as encoding/json does, so the output is always valid JSON
// whatever bytes a client put in a header.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if b >= 0x20 && b != '"' && b != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
