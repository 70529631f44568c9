package parity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// Malformed and unusual framing (RFC 9112) and published request-smuggling
// vectors, one table row per case. Every row is sent as exact bytes on its
// own client connection; its routing key ({k} in the bytes) routes it to a
// placement of its own, backed by a raw upstream that records every byte
// that arrives. Each row asserts:
//
//   - the router's answer exactly: the statuses in order and whether the
//     connection was closed after them ("400 close", "200 keep", "close"
//     for no answer at all);
//   - what reached the cell: nothing, or exactly the listed well-formed
//     requests (method, target, body), each framed unambiguously (one Host,
//     one Content-Length or "Transfer-Encoding: chunked", CRLF lines). A
//     request for /smuggled, a head the upstream cannot parse or bytes left
//     over fail every row.
//
// Where the two routers answer differently the row says so with diverge(),
// naming its entry in docs/parity.md, and asserts each router's own answer:
// a difference is never silent, and the row fails if either router changes.

// outcome is one router's expected answer and what its cell receives.
type outcome struct {
	answer string   // statuses then "close" or "keep"; "close" alone: no answer
	cell   []string // requests at the cell, "METHOD TARGET[ BODY]"; nil: nothing;
	// "METHOD TARGET [cut]": a head whose streamed body the router aborted
	// (the connection to the cell broken before the body's end)
}

func answer(a string, cell ...string) outcome { return outcome{a, cell} }

// expect is a row's outcome per router.
type expect struct {
	goRouter, pingora outcome
	divergence        string // docs/parity.md anchor when the two differ
}

func both(o outcome) expect { return expect{goRouter: o, pingora: o} }

// diverge is a documented difference: each router's own answer, asserted.
func diverge(anchor string, goRouter, pingora outcome) expect {
	return expect{goRouter: goRouter, pingora: pingora, divergence: anchor}
}

type framingCase struct {
	name string
	rfc  string // the rule the case exercises
	raw  string // the exact request bytes; {k} is the row's routing key
	want expect
	host string // when set, the Host every request at the cell carries ("-": empty)
}

// Building blocks of the rows.
const (
	fk       = "Host: x\r\nX-Routing-Key: {k}\r\n"
	getFront = "GET /front HTTP/1.1\r\n" + fk
	postHead = "POST /front HTTP/1.1\r\n" + fk
	smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Routing-Key: {k}\r\n\r\n"
	chunk5   = "5\r\nhello\r\n0\r\n\r\n"
)

// Shared outcomes.
var (
	refused     = both(answer("400 close"))
	servedFront = both(answer("200 keep", "GET /front"))
	postedHello = both(answer("200 keep", "POST /front hello"))
	// A body found malformed after its head went upstream (bodies are
	// streamed, never buffered): the client gets 400 bad_request, the cell
	// the head and a connection aborted before the last chunk.
	cutBody = both(answer("400 close", "POST /front [cut]"))
	// A well-formed chunked request: Go closes after every chunked request
	// (it cannot see a Content-Length beside the chunked coding).
	chunkedHello = diverge("go-closes-after-chunked",
		answer("200 close", "POST /front hello"), answer("200 keep", "POST /front hello"))
	// A Transfer-Encoding that does not end in chunked.
	notFinalChunked = diverge("go-non-final-chunked", answer("501 close"), answer("400 close"))
)

var framingCases = []framingCase{
	// §2.2 message parsing: line endings.
	{name: "bare LF line endings", rfc: "RFC 9112 §2.2 (MAY accept LF)",
		raw:  "GET /front HTTP/1.1\nHost: x\nX-Routing-Key: {k}\n\n",
		want: servedFront},
	{name: "bare CR in a field value", rfc: "RFC 9112 §2.2 (bare CR: invalid or SP)",
		raw:  getFront + "X-A: a\rb\r\n\r\n",
		want: refused},
	{name: "CR CR LF ends a field", rfc: "RFC 9112 §2.2",
		raw:  getFront + "X-A: b\r\r\n\r\n",
		want: refused},
	{name: "bare CR ends the request line", rfc: "RFC 9112 §2.2",
		raw:  "GET /front HTTP/1.1\r" + fk + "\r\n",
		want: refused},
	{name: "empty line before the request line", rfc: "RFC 9112 §2.2 (SHOULD ignore one CRLF)",
		raw:  "\r\n" + getFront + "\r\n",
		want: diverge("go-leading-empty-line", answer("400 close"), answer("200 keep", "GET /front"))},

	// §3 request line.
	{name: "two spaces after the method", rfc: "RFC 9112 §3 (single SP)",
		raw:  "GET  /front HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "tabs as separators", rfc: "RFC 9112 §3",
		raw:  "GET\t/front\tHTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "space after the version", rfc: "RFC 9112 §3",
		raw:  "GET /front HTTP/1.1 \r\n" + fk + "\r\n",
		want: refused},
	{name: "lower-case protocol name", rfc: "RFC 9112 §2.3 (HTTP-name is case-sensitive)",
		raw:  "GET /front http/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "HTTP/1.2", rfc: "RFC 9110 §6.2 (SHOULD process a higher minor version as 1.1)",
		raw:  "GET /front HTTP/1.2\r\n" + fk + "\r\n",
		want: diverge("pingora-http-versions", answer("200 keep", "GET /front"), answer("400 close"))},
	{name: "HTTP/2.0 in an HTTP/1 request line", rfc: "RFC 9110 §15.6.6 (505, or 400)",
		raw:  "GET /front HTTP/2.0\r\n" + fk + "\r\n",
		want: diverge("pingora-http-versions", answer("505 close"), answer("400 close"))},
	{name: "HTTP/0.9 simple request", rfc: "RFC 9112 §3 (no HTTP/0.9)",
		raw:  "GET /front\r\n",
		want: refused},
	{name: "HTTP/2 preface on the plain port", rfc: "RFC 9113 §3.4 (no h2c here)",
		raw:  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		want: refused},
	{name: "invalid method token", rfc: "RFC 9110 §9.1 (method is a token)",
		raw:  "G(T /front HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "lower-case method is just another method", rfc: "RFC 9110 §9.1 (case-sensitive)",
		raw:  "get /front HTTP/1.1\r\n" + fk + "\r\n",
		want: both(answer("200 keep", "get /front"))},
	{name: "NUL in the method", rfc: "RFC 9110 §9.1",
		raw:  "GE\x00T /front HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "NUL in the target", rfc: "RFC 9112 §3 (SHOULD 400, or 301 to the encoded target)",
		raw: "GET /fr\x00ont HTTP/1.1\r\n" + fk + "\r\n",
		want: diverge("pingora-escapes-request-target",
			answer("400 close"), answer("200 keep", "GET /fr%00ont"))},
	{name: "DEL in the target", rfc: "RFC 9112 §3",
		raw: "GET /fr\x7font HTTP/1.1\r\n" + fk + "\r\n",
		want: diverge("pingora-escapes-request-target",
			answer("400 close"), answer("200 keep", "GET /fr%7Font"))},
	{name: "non-ASCII in the target", rfc: "RFC 9112 §3.2, §3 (URI characters only; SHOULD 400)",
		raw:  "GET /fr\xc3\xa9 HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "fragment in the target is not passed on", rfc: "RFC 9112 §3.2 (no fragment in a request-target)",
		raw:  "GET /front#frag HTTP/1.1\r\n" + fk + "\r\n",
		want: servedFront},
	{name: "request target over 64 KiB", rfc: "docs/contract.md §2 (431)",
		raw:  "GET /" + strings.Repeat("p", 70<<10) + " HTTP/1.1\r\n" + fk + "\r\n",
		want: diverge("pingora-long-request-target", answer("431 close"), answer("400 close"))},

	// §3.2 request-target forms.
	{name: "absolute-form", rfc: "RFC 9112 §3.2.2 (a server MUST accept it)",
		raw:  "GET http://x/front HTTP/1.1\r\n" + fk + "\r\n",
		want: servedFront, host: "x"},
	{name: "absolute-form https", rfc: "RFC 9112 §3.2.2",
		raw:  "GET https://x/front HTTP/1.1\r\n" + fk + "\r\n",
		want: servedFront, host: "x"},
	{name: "absolute-form, Host differs", rfc: "RFC 9112 §3.2.2 (ignore Host, use the target's authority)",
		raw:  "GET http://a.example/front HTTP/1.1\r\nHost: b.example\r\nX-Routing-Key: {k}\r\n\r\n",
		want: diverge("pingora-absolute-form-host", answer("200 keep", "GET /front"), answer("400 close")),
		host: "a.example"},
	{name: "absolute-form without Host", rfc: "RFC 9112 §3.2 (MUST 400 without Host)",
		raw:  "GET http://x/front HTTP/1.1\r\nX-Routing-Key: {k}\r\n\r\n",
		want: refused},
	{name: "authority-form with GET", rfc: "RFC 9112 §3.2.3 (CONNECT only)",
		raw:  "GET x:80 HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "asterisk-form with GET", rfc: "RFC 9112 §3.2.4 (OPTIONS only)",
		raw:  "GET * HTTP/1.1\r\n" + fk + "\r\n",
		want: refused},
	{name: "asterisk-form OPTIONS", rfc: "RFC 9112 §3.2.4",
		raw:  "OPTIONS * HTTP/1.1\r\n" + fk + "\r\n",
		want: both(answer("200 keep", "OPTIONS *"))},

	// §5 field syntax.
	{name: "space before the colon", rfc: "RFC 9112 §5.1 (MUST reject with 400)",
		raw:  getFront + "X-A : b\r\n\r\n",
		want: refused},
	{name: "tab before the colon", rfc: "RFC 9112 §5.1 (MUST reject with 400)",
		raw:  getFront + "X-A\t: b\r\n\r\n",
		want: refused},
	{name: "obs-fold in an ordinary field", rfc: "RFC 9112 §5.2 (400, or unfold)",
		raw:  getFront + "X-Fold: a\r\n b\r\n\r\n",
		want: diverge("go-obs-fold-unfolded", answer("200 keep", "GET /front"), answer("400 close"))},
	{name: "whitespace before the first field", rfc: "RFC 9112 §2.2 (reject, or ignore the line)",
		raw:  "GET /front HTTP/1.1\r\n X-A: b\r\n" + fk + "\r\n",
		want: refused},
	{name: "field without a colon", rfc: "RFC 9112 §5",
		raw:  getFront + "NoColonHere\r\n\r\n",
		want: refused},
	{name: "empty field name", rfc: "RFC 9110 §5.1 (a name is a token)",
		raw:  getFront + ": b\r\n\r\n",
		want: refused},
	{name: "separator in a field name", rfc: "RFC 9110 §5.1",
		raw:  getFront + "X(A: b\r\n\r\n",
		want: refused},
	{name: "NUL in a field name", rfc: "RFC 9110 §5.1",
		raw:  getFront + "X\x00A: b\r\n\r\n",
		want: refused},
	{name: "NUL in a field value", rfc: "RFC 9110 §5.5 (MUST reject or replace)",
		raw:  getFront + "X-A: a\x00b\r\n\r\n",
		want: refused},
	{name: "control byte in a field value", rfc: "RFC 9110 §5.5",
		raw:  getFront + "X-A: a\x01b\r\n\r\n",
		want: refused},
	{name: "obs-text in a field value", rfc: "RFC 9110 §5.5 (obs-text is allowed)",
		raw:  getFront + "X-A: caf\xe9\r\n\r\n",
		want: servedFront},
	{name: "head over 64 KiB of fields", rfc: "docs/contract.md §2 (431)",
		raw:  getFront + "X-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
		want: both(answer("431 close"))},

	// Host.
	{name: "no Host", rfc: "RFC 9112 §3.2 (MUST 400)",
		raw:  "GET /front HTTP/1.1\r\nX-Routing-Key: {k}\r\n\r\n",
		want: refused},
	{name: "two Hosts", rfc: "RFC 9112 §3.2 (MUST 400)",
		raw:  "GET /front HTTP/1.1\r\nHost: x\r\nHost: y\r\nX-Routing-Key: {k}\r\n\r\n",
		want: refused},
	{name: "invalid Host", rfc: "RFC 9112 §3.2 (MUST 400 for an invalid Host)",
		raw:  "GET /front HTTP/1.1\r\nHost: a b\r\nX-Routing-Key: {k}\r\n\r\n",
		want: refused},
	{name: "Host with a slash", rfc: "RFC 9112 §3.2",
		raw:  "GET /front HTTP/1.1\r\nHost: x/y\r\nX-Routing-Key: {k}\r\n\r\n",
		want: refused},
	{name: "empty Host", rfc: "RFC 9112 §3.2 (empty when the target has no authority)",
		raw:  "GET /front HTTP/1.1\r\nHost:\r\nX-Routing-Key: {k}\r\n\r\n",
		want: servedFront, host: "-"},
	{name: "HTTP/1.0 without Host", rfc: "RFC 9112 §3.2 (Host is required of 1.1 only)",
		raw:  "GET /front HTTP/1.0\r\nX-Routing-Key: {k}\r\n\r\n",
		want: both(answer("200 close", "GET /front")), host: "-"},

	// §6 message body: Content-Length.
	{name: "two equal Content-Lengths", rfc: "RFC 9110 §8.6 (MAY accept as one)",
		raw:  postHead + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		want: postedHello},
	{name: "two different Content-Lengths", rfc: "RFC 9112 §6.3 (unrecoverable: 400, close)",
		raw:  postHead + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		want: refused},
	{name: "Content-Length list", rfc: "RFC 9110 §8.6 (MAY reject)",
		raw:  postHead + "Content-Length: 5, 5\r\n\r\nhello",
		want: refused},
	{name: "Content-Length with a sign", rfc: "RFC 9110 §8.6 (1*DIGIT)",
		raw:  postHead + "Content-Length: +5\r\n\r\nhello",
		want: refused},
	{name: "negative Content-Length", rfc: "RFC 9110 §8.6",
		raw:  postHead + "Content-Length: -5\r\n\r\nhello",
		want: refused},
	{name: "hex Content-Length", rfc: "RFC 9110 §8.6",
		raw:  postHead + "Content-Length: 0x5\r\n\r\nhello",
		want: refused},
	{name: "space inside Content-Length", rfc: "RFC 9110 §8.6",
		raw:  postHead + "Content-Length: 1 2\r\n\r\nhello world!",
		want: refused},
	{name: "Content-Length overflow", rfc: "RFC 9110 §8.6 (MUST handle overflow)",
		raw:  postHead + "Content-Length: 99999999999999999999999\r\n\r\nhello",
		want: refused},
	{name: "Content-Length with leading zeros", rfc: "RFC 9110 §8.6 (1*DIGIT)",
		raw:  postHead + "Content-Length: 005\r\n\r\nhello",
		want: postedHello},
	{name: "Content-Length with trailing whitespace", rfc: "RFC 9112 §5.1 (OWS around the value)",
		raw:  postHead + "Content-Length: 5 \t\r\n\r\nhello",
		want: postedHello},
	{name: "Content-Length with space before the colon", rfc: "RFC 9112 §5.1 (MUST 400)",
		raw:  postHead + "Content-Length : 5\r\n\r\nhello",
		want: refused},
	{name: "obs-folded Content-Length", rfc: "RFC 9112 §5.2 (400, or unfold)",
		raw:  postHead + "Content-Length:\r\n 5\r\n\r\nhello",
		want: diverge("go-obs-fold-unfolded", answer("200 keep", "POST /front hello"), answer("400 close"))},
	{name: "GET with a body, then a pipelined GET", rfc: "RFC 9112 §6.3, §9.3",
		raw:  getFront + "Content-Length: 5\r\n\r\nhello" + "GET /second HTTP/1.1\r\n" + fk + "\r\n",
		want: both(answer("200 200 keep", "GET /front hello", "GET /second"))},

	// §6 message body: Transfer-Encoding, and the published TE.TE
	// obfuscations (each with a request behind it that must never run).
	{name: "chunked", rfc: "RFC 9112 §7.1",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk5,
		want: chunkedHello},
	{name: "CHUNKED in capitals", rfc: "RFC 9112 §7 (codings are case-insensitive)",
		raw:  postHead + "Transfer-Encoding: CHUNKED\r\n\r\n" + chunk5,
		want: chunkedHello},
	{name: "tab before chunked", rfc: "RFC 9110 §5.6.3 (tab is OWS)",
		raw:  postHead + "Transfer-Encoding:\tchunked\r\n\r\n" + chunk5,
		want: chunkedHello},
	{name: "no space before chunked", rfc: "RFC 9110 §5.6.3",
		raw:  postHead + "Transfer-Encoding:chunked\r\n\r\n" + chunk5,
		want: chunkedHello},
	{name: "xchunked (TE.TE)", rfc: "RFC 9112 §6.1 (final coding not chunked: 400)",
		raw:  postHead + "Transfer-Encoding: xchunked\r\n\r\n" + chunk5 + smuggled,
		want: notFinalChunked},
	{name: "identity (TE.TE)", rfc: "RFC 9112 §6.1",
		raw:  postHead + "Transfer-Encoding: identity\r\n\r\n" + chunk5 + smuggled,
		want: notFinalChunked},
	{name: "quoted chunked (TE.TE)", rfc: "RFC 9112 §6.1",
		raw:  postHead + "Transfer-Encoding: \"chunked\"\r\n\r\n" + chunk5 + smuggled,
		want: notFinalChunked},
	{name: "chunked, identity (TE.TE)", rfc: "RFC 9112 §6.1 (chunked not final: 400)",
		raw:  postHead + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunk5 + smuggled,
		want: notFinalChunked},
	{name: "chunked then identity on two lines (TE.TE)", rfc: "RFC 9112 §6.1, RFC 9110 §5.3",
		raw:  postHead + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunk5 + smuggled,
		want: notFinalChunked},
	{name: "bogus then chunked on two lines (TE.TE)", rfc: "docs/contract.md §2 (other codings before chunked: 501)",
		raw:  postHead + "Transfer-Encoding: bogus\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk5 + smuggled,
		want: both(answer("501 close"))},
	{name: "chunked twice (TE.TE)", rfc: "docs/contract.md §2 (501)",
		raw:  postHead + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk5 + smuggled,
		want: both(answer("501 close"))},
	{name: "space before the colon of Transfer-Encoding (TE.TE)", rfc: "RFC 9112 §5.1 (MUST 400)",
		raw:  postHead + "Transfer-Encoding : chunked\r\n\r\n" + chunk5 + smuggled,
		want: refused},
	{name: "vertical tab before chunked (TE.TE)", rfc: "RFC 9110 §5.6.3 (VT is not OWS)",
		raw:  postHead + "Transfer-Encoding:\x0bchunked\r\n\r\n" + chunk5 + smuggled,
		want: refused},
	{name: "vertical tab after chunked (TE.TE)", rfc: "RFC 9110 §5.6.3",
		raw:  postHead + "Transfer-Encoding: chunked\x0b\r\n\r\n" + chunk5 + smuggled,
		want: refused},
	{name: "obs-folded Transfer-Encoding (TE.TE)", rfc: "RFC 9112 §5.2 (400, or unfold)",
		raw:  postHead + "Transfer-Encoding:\r\n chunked\r\n\r\n" + chunk5 + smuggled,
		want: diverge("go-obs-fold-unfolded", answer("200 close", "POST /front hello"), answer("400 close"))},
	{name: "Transfer-Encoding folded into the field before (TE.TE)", rfc: "RFC 9112 §5.2",
		raw: postHead + "X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n" + chunk5 + smuggled,
		// Go: one field "X-A: b Transfer-Encoding: chunked", no body; the
		// chunk-size line is then no request line (400, closed).
		want: diverge("go-obs-fold-unfolded", answer("200 400 close", "POST /front"), answer("400 close"))},
	{name: "Transfer-Encoding after a bare LF (TE.TE)", rfc: "RFC 9112 §2.2 (a bare LF ends a line)",
		raw:  postHead + "X-A: b\nTransfer-Encoding: chunked\r\n\r\n" + chunk5,
		want: chunkedHello},
	{name: "CL.TE", rfc: "docs/contract.md §2 (400, or chunked and close)",
		raw:  postHead + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG" + smuggled,
		want: both(answer("200 close", "POST /front"))},
	{name: "TE.CL", rfc: "docs/contract.md §2 (400, or chunked and close)",
		raw:  postHead + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n" + smuggled,
		want: both(answer("200 close", "POST /front SMUGGLED"))},
	{name: "CL.TE with an obfuscated TE", rfc: "docs/contract.md §2, RFC 9112 §6.1",
		raw:  postHead + "Content-Length: 6\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nG" + smuggled,
		want: notFinalChunked},
	{name: "HTTP/1.0 with chunked", rfc: "RFC 9112 §6.1 (faulty framing: MUST close after)",
		raw:  "POST /front HTTP/1.0\r\n" + fk + "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + chunk5 + smuggled,
		want: diverge("go-http10-transfer-encoding", answer("200 close", "POST /front"), answer("400 close"))},
	{name: "HTTP/1.0 with chunked, a request as its body", rfc: "RFC 9112 §6.1",
		raw:  "POST /front HTTP/1.0\r\n" + fk + "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + smuggled,
		want: diverge("go-http10-transfer-encoding", answer("200 close", "POST /front"), answer("400 close"))},

	// §7.1 chunked coding.
	{name: "chunk-size overflow", rfc: "RFC 9112 §7.1 (MUST handle overflow)",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
		want: cutBody},
	{name: "invalid chunk-size", rfc: "RFC 9112 §7.1",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
		want: cutBody},
	{name: "chunk-size with 0x", rfc: "RFC 9112 §7.1 (1*HEXDIG)",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
		want: cutBody},
	{name: "chunk extension", rfc: "RFC 9112 §7.1.1 (ignore unknown extensions)",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
		want: chunkedHello},
	{name: "chunk data without CRLF", rfc: "RFC 9112 §7.1",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
		want: cutBody},
	{name: "chunk lines ending in bare LF", rfc: "RFC 9112 §7.1, §2.2",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
		want: cutBody},
	{name: "trailer field", rfc: "RFC 9112 §7.1.2",
		raw:  postHead + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
		want: chunkedHello},

	// §9.3 pipelining and connection persistence.
	{name: "two pipelined GETs", rfc: "RFC 9112 §9.3.2",
		raw:  getFront + "\r\n" + "GET /second HTTP/1.1\r\n" + fk + "\r\n",
		want: both(answer("200 200 keep", "GET /front", "GET /second"))},
	{name: "chunked POST then a pipelined GET", rfc: "RFC 9112 §9.3.2 (or answer the first and close)",
		raw: postHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk5 + "GET /second HTTP/1.1\r\n" + fk + "\r\n",
		want: diverge("go-closes-after-chunked", answer("200 close", "POST /front hello"),
			answer("200 200 keep", "POST /front hello", "GET /second"))},
	{name: "a good request then garbage", rfc: "RFC 9112 §9.3.2",
		raw:  getFront + "\r\n" + "\x00\x01garbage\r\n\r\n",
		want: both(answer("200 400 close", "GET /front"))},
	{name: "HTTP/1.0 keep-alive, two requests", rfc: "RFC 9112 §9.3 (keep-alive is optional in 1.0)",
		raw: "GET /front HTTP/1.0\r\n" + fk + "Connection: keep-alive\r\n\r\n" + "GET /second HTTP/1.0\r\n" + fk + "\r\n",
		want: diverge("go-http10-transfer-encoding", answer("200 close", "GET /front"),
			answer("200 200 close", "GET /front", "GET /second"))},
	{name: "HTTP/1.0 keep-alive POST with Content-Length", rfc: "RFC 9112 §9.3",
		raw:  "POST /front HTTP/1.0\r\n" + fk + "Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello" + "GET /second HTTP/1.0\r\n" + fk + "\r\n",
		want: both(answer("200 200 close", "POST /front hello", "GET /second"))},
}

// rawCell is a raw upstream that records what arrives: every request it
// can parse (answered 200 "ok"), and every problem with the bytes.
type rawCell struct {
	addr     string
	mu       sync.Mutex
	requests []string // "METHOD TARGET[ BODY]"
	problems []string
	hosts    []string
}

func startRawCell(t *testing.T) *rawCell {
	c := &rawCell{}
	c.addr = testkit.Serve(t, c.serve)
	return c
}

func (c *rawCell) problem(format string, args ...any) {
	c.mu.Lock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *rawCell) serve(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		head, err := readRawHead(br)
		if err != nil {
			if len(head) > 0 {
				c.problem("a cut head: %q", head)
			} else if n := br.Buffered(); n > 0 {
				rest, _ := br.Peek(n)
				c.problem("bytes left over: %q", rest)
			}
			return
		}
		if msg := checkForwardedHead(head); msg != "" {
			c.problem("%s: %q", msg, head)
		}
		req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head), br)))
		if err != nil {
			c.problem("a head the upstream cannot parse (%v): %q", err, head)
			return
		}
		body, err := io.ReadAll(req.Body)
		var ne net.Error
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne) {
			// The router aborted a streamed body it found malformed.
			c.mu.Lock()
			c.requests = append(c.requests, req.Method+" "+req.RequestURI+" [cut]")
			c.hosts = append(c.hosts, req.Host)
			c.mu.Unlock()
			return
		}
		if err != nil {
			c.problem("a body the upstream cannot read (%v) after %q", err, head)
			return
		}
		seen := req.Method + " " + req.RequestURI
		if len(body) > 0 {
			seen += " " + string(body)
		}
		c.mu.Lock()
		c.requests = append(c.requests, seen)
		c.hosts = append(c.hosts, req.Host)
		c.mu.Unlock()
		if strings.Contains(req.RequestURI, "smuggled") {
			c.problem("a smuggled request reached the cell: %q", head)
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nX-Cell: raw\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// readRawHead reads one request head as it arrived, up to and including
// the empty line. The request is read with http.ReadRequest from these
// bytes too, but the head is checked on its own first, as ReadRequest
// forgives things (bare LF, CL with TE) a proxy must not send.
func readRawHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return head, err
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" && len(head) > len(line) {
			return head, nil
		}
		if len(head) > 1<<20 {
			return head, errors.New("head over 1 MiB")
		}
	}
}

// checkForwardedHead says what is wrong with a head a router sent a cell,
// "" if nothing: an origin-form (or "*") request line in HTTP/1.1, every
// line ending in CRLF, token names with a colon right after them, no
// obs-fold, exactly one Host, and body framing that cannot be read two
// ways (at most one Content-Length, not with Transfer-Encoding, which may
// only be "chunked").
func checkForwardedHead(head []byte) string {
	s := string(head)
	if !strings.HasSuffix(s, "\r\n\r\n") {
		return "head not ended by CRLF CRLF"
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n\r\n"), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n\x00") {
			return "bare CR, LF or NUL in a line"
		}
	}
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" || !validMethod(parts[0]) || !(strings.HasPrefix(parts[1], "/") || parts[1] == "*") {
		return "request line not METHOD SP origin-form SP HTTP/1.1"
	}
	var hosts, cls, tes int
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || !validMethod(name) {
			return "a field line without a token name and a colon (obs-fold?)"
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "host":
			hosts++
		case "content-length":
			cls++
			if _, err := strconv.ParseUint(value, 10, 63); err != nil {
				return "Content-Length not a number"
			}
		case "transfer-encoding":
			tes++
			if !strings.EqualFold(value, "chunked") {
				return "Transfer-Encoding other than chunked"
			}
		}
	}
	switch {
	case hosts != 1:
		return fmt.Sprintf("%d Host fields", hosts)
	case cls > 1 || tes > 1:
		return "Content-Length or Transfer-Encoding twice"
	case cls == 1 && tes == 1:
		return "Content-Length with Transfer-Encoding"
	}
	return ""
}

// validMethod is an RFC 9110 token (a method or a field name).
func validMethod(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

func (c *rawCell) seen() (requests, problems, hosts []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.requests...), append([]string(nil), c.problems...), append([]string(nil), c.hosts...)
}

// framingExchange writes payload on a fresh connection and reads answers
// until the router closes the connection, or no further answer comes
// within idle (the first may take up to first). It returns the answer in
// the table's notation: the statuses, then "close" or "keep". The bytes
// of the answers that came from the cell (X-Cell: raw) are counted.
func framingExchange(addr string, payload []byte, first, idle time.Duration) (got string, fromCell int, err error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	go func() {
		conn.SetWriteDeadline(time.Now().Add(first))
		conn.Write(payload)
	}()
	var words []string
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(first))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			switch {
			case !isClosed(err):
				words = append(words, "keep")
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne):
				words = append(words, "close")
			default: // bytes that are no HTTP/1 response
				words = append(words, fmt.Sprintf("unreadable(%v)", err), "close")
			}
			return strings.Join(words, " "), fromCell, nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		words = append(words, strconv.Itoa(resp.StatusCode))
		if resp.Header.Get("X-Cell") == "raw" {
			fromCell++
		}
		conn.SetReadDeadline(time.Now().Add(idle))
	}
}

func TestMalformedFraming(t *testing.T) {
	t.Parallel()
	cellsByKey := map[string]*rawCell{}
	routes := map[string]string{}
	placements := doc{}
	catchall := startRawCell(t)
	placements["catchall"] = placement("shared", "http://"+catchall.addr, nil)
	for i := range framingCases {
		key := fmt.Sprintf("mf%02d", i)
		c := startRawCell(t)
		cellsByKey[key] = c
		routes[key] = "p" + key
		placements["p"+key] = placement("shared", "http://"+c.addr, nil)
	}
	r := startRouter(t, configDoc("framing-1", "catchall", routes, placements))

	t.Run("cases", func(t *testing.T) {
		for i, tc := range framingCases {
			key := fmt.Sprintf("mf%02d", i)
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				want := tc.want.goRouter
				if routerName == "pingora" {
					want = tc.want.pingora
				}
				if tc.want.divergence != "" {
					t.Logf("documented divergence (docs/parity.md#%s): %s answers %q", tc.want.divergence, routerName, want.answer)
				}
				payload := strings.ReplaceAll(tc.raw, "{k}", key)
				got, fromCell, err := framingExchange(r.listen, []byte(payload), 5*time.Second, 2*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", tc.rfc, err)
				}
				time.Sleep(200 * time.Millisecond) // a smuggled request would be on its way
				reqs, problems, hosts := cellsByKey[key].seen()
				t.Logf("observed: answer %q, cell %q, hosts %q", got, reqs, hosts)
				if got != want.answer {
					t.Errorf("%s: answer %q, want %q", tc.rfc, got, want.answer)
				}
				if strings.Join(reqs, "\n") != strings.Join(want.cell, "\n") {
					t.Errorf("%s: the cell got %q, want %q", tc.rfc, reqs, want.cell)
				}
				for _, p := range problems {
					t.Errorf("%s: %s", tc.rfc, p)
				}
				complete := 0
				for _, q := range reqs {
					if !strings.HasSuffix(q, " [cut]") {
						complete++
					}
				}
				if fromCell != complete {
					t.Errorf("%s: %d answers came from the cell, which got %d complete requests", tc.rfc, fromCell, complete)
				}
				if tc.host == "-" && slices.Contains(routerArgs, "stdlib") {
					// http.Transport cannot send an empty Host: it sends the
					// cell's address (docs/parity.md#go-stdlib-empty-host).
					t.Logf("documented divergence (docs/parity.md#go-stdlib-empty-host): Host %q at the cell", hosts)
				} else if tc.host != "" {
					wantHost := strings.TrimPrefix(tc.host, "-") // "-": an empty Host
					for _, h := range hosts {
						if h != wantHost {
							t.Errorf("%s: the cell got Host %q, want %q", tc.rfc, h, wantHost)
						}
					}
				}
			})
		}
	})

	reqs, problems, _ := catchall.seen()
	if len(reqs) > 0 || len(problems) > 0 {
		t.Errorf("the default placement's cell got %q (problems %q): every row has a routing key of its own", reqs, problems)
	}
	if r.proc.Exited() {
		t.Fatalf("router exited: %v", r.proc.State())
	}
	if got, _, err := framingExchange(r.listen, []byte("GET /alive HTTP/1.1\r\nHost: x\r\nX-Routing-Key: mf00\r\nConnection: close\r\n\r\n"), 5*time.Second, time.Second); err != nil || got != "200 close" {
		t.Errorf("router after the table: %q %v, want 200 close", got, err)
	}
}

// TestFramingTable keeps the table honest: at least 40 rows, unique names,
// every row with its rule, and the two routers' outcomes differ only in a
// row that names its entry in docs/parity.md, which must exist.
func TestFramingTable(t *testing.T) {
	if len(framingCases) < 40 {
		t.Errorf("%d rows, want at least 40", len(framingCases))
	}
	parityDoc, err := os.ReadFile(filepath.Join("..", "docs", "parity.md"))
	if err != nil {
		t.Fatalf("docs/parity.md: %v", err)
	}
	seen := map[string]bool{}
	for _, tc := range framingCases {
		if seen[tc.name] {
			t.Errorf("row %q listed twice", tc.name)
		}
		seen[tc.name] = true
		if tc.rfc == "" || tc.raw == "" || !strings.Contains(tc.raw, "{k}") && tc.want.goRouter.cell != nil {
			t.Errorf("row %q: incomplete", tc.name)
		}
		same := tc.want.goRouter.answer == tc.want.pingora.answer &&
			strings.Join(tc.want.goRouter.cell, "\n") == strings.Join(tc.want.pingora.cell, "\n")
		switch {
		case same && tc.want.divergence != "":
			t.Errorf("row %q names divergence %q but both routers answer alike", tc.name, tc.want.divergence)
		case !same && tc.want.divergence == "":
			t.Errorf("row %q: the routers differ without a docs/parity.md entry", tc.name)
		case !same && !bytes.Contains(parityDoc, []byte("### "+tc.want.divergence+"\n")):
			t.Errorf("row %q: docs/parity.md has no section %q", tc.name, "### "+tc.want.divergence)
		}
		for _, o := range []outcome{tc.want.goRouter, tc.want.pingora} {
			for _, c := range o.cell {
				if strings.Contains(c, "smuggled") {
					t.Errorf("row %q expects a smuggled request at the cell", tc.name)
				}
			}
		}
	}
}
