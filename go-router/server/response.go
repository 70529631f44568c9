package server

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"cellbench/go-router/h1"
)

// bufferBeforeChunking is how much of a body of unknown length is held
// before the head is sent, so that a short one still gets a
// Content-Length; net/http holds the same 2 KiB.
const bufferBeforeChunking = 2048

// response is the fast path's http.ResponseWriter. It frames a response as
// net/http.Server does (the same head, in the same order, for the same
// handler calls); server_test.go checks that byte for byte. Only chunk
// boundaries may differ: net/http re-cuts a chunked body at 2 KiB through
// a bufio.Writer, this writes the held bytes and then each Write as a chunk.
type response struct {
	c   *conn
	req *http.Request
	// header is what the handler sees; head is the header as of the final
	// WriteHeader, as net/http keeps it, when the head is sent later.
	header http.Header
	head   http.Header

	status        int
	wroteHeader   bool // final status set
	committed     bool // head written to the connection buffer
	chunked       bool
	contentLength int64 // -1: unknown
	written       int64
	held          []byte   // body bytes held before the head is sent
	trailers      []string // declared in the head's Trailer field
	closeAfter    bool
	handlerDone   bool

	scratch [64]byte
}

// reset readies the connection's response for its next request. The
// header map is cleared and reused rather than made anew: a handler must
// not keep it after returning (go-router's does not). The hold buffer is
// kept too, unless a large first write grew it: idle connections should
// not keep tens of KiB each.
func (w *response) reset(c *conn, req *http.Request) {
	held, header := w.held[:0], w.header
	if cap(held) > bufferBeforeChunking {
		held = nil
	}
	if header == nil {
		header = make(http.Header, 16)
	} else {
		clear(header)
	}
	*w = response{c: c, req: req, header: header, contentLength: -1, held: held}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		w.c.s.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	bw := w.c.bw
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		writeStatusLine(bw, code, w.scratch[:0])
		_ = w.header.WriteSubset(bw, excludedNoBody)
		_, _ = bw.WriteString("\r\n")
		_ = bw.Flush()
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("http: invalid Content-Length of %q", cl)
			// net/http deletes it from the handler's map only after
			// copying the head, where it still stops the automatic
			// Content-Length: the response goes out chunked.
			defer w.header.Del("Content-Length")
		}
	}
	// A head that needs nothing from the body is sent now: no type to
	// sniff, no length to count. That is the proxied response with a
	// length, and it spares the header copy net/http makes.
	if _, typed := w.header["Content-Type"]; !bodyAllowed(code) || typed && w.contentLength >= 0 {
		w.commit(w.header, nil)
		return
	}
	w.head = w.header.Clone()
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	// Counted even when refused, as net/http does: once over the
	// length, every later write fails and the connection is not reused.
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		// Like net/http, hold up to 2 KiB: the first bytes decide the
		// Content-Type sniffing and, if the handler ends, the length.
		if len(w.held)+len(p) <= bufferBeforeChunking {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		w.held = append(w.held, p...)
		if err := w.sendHead(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return len(p), w.writeBody(p)
}

// sendHead commits the head with the held bytes as the first body bytes.
func (w *response) sendHead() error {
	first := w.held
	if len(first) == 0 {
		first = nil
	}
	w.commit(w.head, first)
	w.held = w.held[:0]
	return w.writeBody(first)
}

func (w *response) writeBody(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if w.req.Method == http.MethodHead {
		return nil // written by the handler, counted, never sent
	}
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.Write(strconv.AppendInt(w.scratch[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
		_, _ = bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

func (w *response) Flush() {
	_ = w.FlushError()
}

// FlushError is what http.ResponseController calls.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		if err := w.sendHead(); err != nil {
			return err
		}
	}
	return w.c.bw.Flush()
}

// finish completes the response once the handler has returned.
func (w *response) finish() error {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		if err := w.sendHead(); err != nil {
			return err
		}
	}
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.WriteString("0\r\n")
		if trailers := w.finalTrailers(); trailers != nil {
			_ = trailers.Write(bw)
		}
		_, _ = bw.WriteString("\r\n")
	}
	if w.contentLength >= 0 && w.written != w.contentLength && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		w.closeAfter = true // short (the client is owed bytes) or overrun: out of sync
	}
	return bw.Flush()
}

// finalTrailers is net/http's: the TrailerPrefix fields as named (not
// canonicalized) and the declared ones, written sorted by Header.Write.
func (w *response) finalTrailers() http.Header {
	var t http.Header
	for name, values := range w.header {
		if trailer, ok := strings.CutPrefix(name, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[trailer] = values
		}
	}
	for _, name := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.header[name] {
			t.Add(name, v)
		}
	}
	return t
}

// commit writes the head into the connection buffer, following
// net/http's chunkWriter.writeHeader for the requests the fast path takes
// (HTTP/1.1, no request body). first is the start of the body, if known.
func (w *response) commit(header http.Header, first []byte) {
	w.committed = true
	var exclude map[string]bool
	del := func(name string) {
		if _, ok := header[name]; ok {
			if exclude == nil {
				exclude = make(map[string]bool)
			}
			exclude[name] = true
		}
	}
	trailers := false
	for name := range header {
		if strings.HasPrefix(name, http.TrailerPrefix) {
			del(name)
			trailers = true
		}
	}
	for _, v := range header["Trailer"] {
		trailers = true
		for name := range strings.SplitSeq(v, ",") {
			if name = http.CanonicalHeaderKey(strings.Trim(name, " \t")); validTrailer(name) {
				w.trailers = append(w.trailers, name)
			}
		}
	}
	te := header.Get("Transfer-Encoding")
	hasTE := te != ""
	isHEAD := w.req.Method == http.MethodHead
	code := w.status

	var contentLength, contentType, connection, transferEncoding string
	if w.handlerDone && !trailers && !hasTE && bodyAllowed(code) && header.Get("Content-Length") == "" && (!isHEAD || len(first) > 0) {
		w.contentLength = int64(len(first))
		contentLength = strconv.Itoa(len(first))
	}
	if header.Get("Connection") == "close" || w.c.s.shutting.Load() {
		w.closeAfter = true
	}
	if bodyAllowed(code) {
		_, typed := header["Content-Type"]
		if !typed && !hasTE && header.Get("Content-Encoding") == "" && len(first) > 0 {
			contentType = http.DetectContentType(first)
		}
	} else {
		for _, name := range suppressed(code) {
			del(name)
		}
	}
	hasCL := w.contentLength >= 0
	if hasCL && hasTE && te != "identity" {
		w.c.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		del("Content-Length")
		hasCL = false
	}
	switch {
	case isHEAD || !bodyAllowed(code):
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case hasTE && te == "identity":
		w.closeAfter = true
		del("Transfer-Encoding")
	default:
		w.chunked = true
		transferEncoding = "chunked"
		if hasTE && te == "chunked" {
			del("Transfer-Encoding")
		}
	}
	if w.chunked {
		del("Content-Length")
	}
	if (w.closeAfter || w.req.Close) && !h1.HasToken(header.Get("Connection"), "close") {
		del("Connection")
		connection = "close"
	}

	bw := w.c.bw
	writeStatusLine(bw, code, w.scratch[:0])
	writeFields(bw, header, exclude)
	if _, ok := header["Date"]; !ok {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(time.Now().UTC().AppendFormat(w.scratch[:0], http.TimeFormat))
		_, _ = bw.WriteString("\r\n")
	}
	for _, h := range [...]struct{ name, value string }{
		{"Content-Length", contentLength}, {"Content-Type", contentType},
		{"Connection", connection}, {"Transfer-Encoding", transferEncoding},
	} {
		if h.value != "" {
			_, _ = bw.WriteString(h.name + ": " + h.value + "\r\n")
		}
	}
	_, _ = bw.WriteString("\r\n")
}

// validTrailer is httpguts.ValidTrailerHeader (which net/http applies to
// declared trailers) for a canonical name.
func validTrailer(name string) bool {
	return name != "" && !strings.HasPrefix(name, "If-") && !notTrailers[name]
}

var notTrailers = map[string]bool{
	"Authorization": true, "Cache-Control": true, "Connection": true, "Content-Encoding": true,
	"Content-Length": true, "Content-Range": true, "Content-Type": true, "Expect": true,
	"Host": true, "Keep-Alive": true, "Max-Forwards": true, "Pragma": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Range": true, "Realm": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Www-Authenticate": true,
}

var excludedNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

func suppressed(code int) []string {
	if code == http.StatusNotModified {
		return []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	}
	return []string{"Content-Length", "Transfer-Encoding"}
}

func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

func writeStatusLine(bw *bufio.Writer, code int, scratch []byte) {
	_, _ = bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		_, _ = bw.Write(strconv.AppendInt(scratch, int64(code), 10))
		_ = bw.WriteByte(' ')
		_, _ = bw.WriteString(text)
		_, _ = bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
}

// writeFields writes header as http.Header.WriteSubset does (fields sorted
// by name, fields with an invalid name dropped, CR and LF in values turned
// into spaces, values trimmed) without its pooled sorter and string
// replacer, which showed in the profile.
func writeFields(bw *bufio.Writer, header http.Header, exclude map[string]bool) {
	var stack [24]string
	names := stack[:0]
	for name := range header {
		if !exclude[name] && h1.ValidToken(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range header[name] {
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
			}
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(textproto.TrimString(v))
			_, _ = bw.WriteString("\r\n")
		}
	}
}
