package upstream

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"

	"cellbench/go-router/h1"
	"cellbench/go-router/tunedpath"
)

// readPlainResponse reads the response to req when it is a plain one, the
// bulk of proxied traffic: HTTP/1.1, a final status other than 204 and
// 304, to a request other than HEAD, framed by exactly one Content-Length
// (no Transfer-Encoding, no Trailer), its head complete within br's buffer
// and every field well formed (h1.ParseFields). It returns what
// http.ReadResponse would return for it, at a fraction of the cost (one
// string for the whole head instead of one per line and value); nil means
// "not plain" and nothing has been consumed, so http.ReadResponse reads
// the same bytes, errors included. resphead_test.go checks the two
// against each other, also under fuzzing.
func readPlainResponse(br *bufio.Reader, req *http.Request) *http.Response {
	tunedpath.Mark(tunedpath.ResponseHeadParser)
	if req.Method == http.MethodHead {
		return nil
	}
	if _, err := br.Peek(1); err != nil {
		return nil // the wait for the upstream ended in an error
	}
	head := h1.CompleteHead(br)
	for head == nil {
		if br.Buffered() == br.Size() {
			return nil
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return nil
		}
		head = h1.CompleteHead(br)
	}
	resp := parseResponseHead(string(head), req)
	if resp == nil {
		return nil
	}
	_, _ = br.Discard(len(head))
	if resp.ContentLength == 0 {
		resp.Body = http.NoBody
	} else {
		resp.Body = &lengthBody{r: br, remaining: resp.ContentLength}
	}
	return resp
}

// parseResponseHead parses a plain response head (see readPlainResponse)
// into a Response without a Body, nil if it is not plain.
func parseResponseHead(s string, req *http.Request) *http.Response {
	line, rest, _ := strings.Cut(s, "\r\n")
	proto, status, ok := strings.Cut(line, " ")
	// A control character in the reason phrase (a bare LF above all) would
	// end the line earlier for net/http.
	if !ok || proto != "HTTP/1.1" || !h1.ValidFieldValue(status) {
		return nil
	}
	status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(status, " ")
	if len(code) != 3 || code[0] < '2' || code[0] > '5' || !isDigits(code) || code == "204" || code == "304" {
		return nil
	}
	contentLength, lengths := int64(-1), 0
	header, ok := h1.ParseFields(rest, func(name, value string) (store, ok bool) {
		switch name {
		case "Content-Length":
			lengths++
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || !isDigits(value) || len(value) > 18 {
				return false, false
			}
			contentLength = n
		case "Transfer-Encoding", "Trailer":
			return false, false
		}
		return true, true
	})
	if !ok || lengths != 1 {
		return nil
	}
	h1.FixPragmaCacheControl(header)
	statusCode, _ := strconv.Atoi(code)
	resp := &http.Response{
		Status:        status,
		StatusCode:    statusCode,
		Proto:         proto,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		ContentLength: contentLength,
		Request:       req,
	}
	// As net/http's readTransfer: a close token ends the connection after
	// this response, and the Connection field that said so is dropped.
	if h1.ContainsToken(header["Connection"], "close") {
		resp.Close = true
		delete(header, "Connection")
	}
	return resp
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// lengthBody is a body of known length read from the connection's buffer;
// like net/http's, it reports a connection that ends early as
// io.ErrUnexpectedEOF.
type lengthBody struct {
	r         io.Reader
	remaining int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
