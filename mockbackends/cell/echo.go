package cell

import (
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"

	"cellbench/internal/jsonstr"
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

// Echo is the echo body as its readers decode it (README.md, "The echo");
// appendEcho writes it.
type Echo struct {
	Cell       string              `json:"cell"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      string              `json:"query"`
	Headers    map[string][]string `json:"headers"`
	BodyBytes  int64               `json:"body_bytes"`
	BodySHA256 string              `json:"body_sha256"` // hex
}

// appendEcho renders e as the echo JSON object
// {"cell","method","path","query","headers","body_bytes","body_sha256"}.
// Hand-written instead of encoding/json because the echo is the hot path of
// every benchmark: reflection over a map of slices cost several allocations
// per request, this costs none beyond the sorted key list (pooled by the caller).
func appendEcho(dst []byte, e *echo, keys []string) ([]byte, []string) {
	dst = append(dst, `{"cell":`...)
	dst = jsonstr.Append(dst, e.cell)
	dst = append(dst, `,"method":`...)
	dst = jsonstr.Append(dst, e.method)
	dst = append(dst, `,"path":`...)
	dst = jsonstr.Append(dst, e.path)
	dst = append(dst, `,"query":`...)
	dst = jsonstr.Append(dst, e.query)
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
		dst = jsonstr.Append(dst, k)
		dst = append(dst, ":["...)
		var values []string
		switch {
		case k == "Host" && e.host != "":
			dst = jsonstr.Append(dst, e.host)
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
			dst = jsonstr.Append(dst, v)
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
