package cell

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"cellbench/internal/jsonstr"
)

// Shared read-only header values: assigning them straight into the header
// map avoids a slice allocation per response.
var (
	contentTypeJSON  = []string{"application/json"}
	contentTypeBytes = []string{"application/octet-stream"}
	contentTypeText  = []string{"text/plain; charset=utf-8"}
)

// emptySHA256 is the digest of an empty body, the common case.
var emptySHA256 = sha256.Sum256(nil)

// fillBytes is the content of size= bodies.
var fillBytes = func() []byte {
	b := make([]byte, 32<<10)
	for i := range b {
		b[i] = 'x'
	}
	return b
}()

// scratch is the per-request working memory, pooled so the echo path does
// not allocate it per request.
type scratch struct {
	out     []byte
	keys    []string
	sha     hash.Hash
	sum     [sha256.Size]byte // Sum target: a slice of a stack value passed to hash.Hash would move it to the heap
	copyBuf []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{out: make([]byte, 0, 2048), keys: make([]string, 0, 32), sha: sha256.New(), copyBuf: make([]byte, 16<<10)}
}}

// maxPooledEcho caps the echo buffer kept for reuse: one request with huge
// headers must not pin that much memory in the pool for good.
const maxPooledEcho = 64 << 10

func (s *scratch) release() {
	if cap(s.out) > maxPooledEcho {
		s.out = make([]byte, 0, 2048)
	}
	clear(s.keys[:cap(s.keys)]) // drop references to the last request's header names
	scratchPool.Put(s)
}

// ServeHTTP answers one request: the health endpoint, or the echo shaped
// by the request's knobs and the cell's chaos.
func (c *Cell) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == c.healthPath {
		c.serveHealth(w)
		return
	}
	c.counters.requests.Add(1)
	c.counters.inflight.Add(1)
	defer c.counters.inflight.Add(-1)
	w.Header()["X-Cell"] = c.xCell

	knobs, err := ParseKnobs(r.URL.RawQuery)
	if err != nil {
		c.writeError(w, http.StatusBadRequest, "bad_knob", err.Error())
		return
	}
	chaos := c.chaos.Load()

	s := scratchPool.Get().(*scratch)
	defer s.release()
	e := echo{
		cell:       c.name,
		method:     r.Method,
		path:       r.URL.EscapedPath(),
		query:      r.URL.RawQuery,
		header:     r.Header,
		host:       r.Host,
		transferTE: r.TransferEncoding,
		bodySHA256: emptySHA256,
	}
	// The body streams through the digest; it is never held whole.
	if r.Body != nil && r.Body != http.NoBody {
		s.sha.Reset()
		n, err := io.CopyBuffer(s.sha, r.Body, s.copyBuf)
		if err != nil {
			c.writeError(w, http.StatusBadRequest, "body_read_failed", err.Error())
			return
		}
		e.bodyBytes = n
		s.sha.Sum(s.sum[:0])
		e.bodySHA256 = s.sum
	}

	ctx := r.Context()
	if delay := chaos.DelayMs + knobs.DelayMs; delay > 0 && !sleep(ctx, delay) {
		c.counters.cancelled.Add(1)
		return
	}
	if knobs.Close {
		c.closeConnection(w)
		return
	}

	status := chooseStatus(chaos, &knobs, rand.Float64)
	if status < http.StatusOK {
		// An interim response (e.g. 103 Early Hints); the final answer
		// follows as usual.
		w.WriteHeader(status)
		status = http.StatusOK
	}
	c.counters.countStatus(status)
	switch {
	case !bodyAllowed(status):
		w.WriteHeader(status)
	case knobs.Chunks > 0:
		c.writeChunks(ctx, w, status, &knobs)
	case knobs.HasSize:
		writeSized(w, status, knobs.Size)
	default:
		s.out, s.keys = appendEcho(s.out[:0], &e, s.keys)
		h := w.Header()
		h["Content-Type"] = contentTypeJSON
		h["Content-Length"] = []string{strconv.Itoa(len(s.out))}
		w.WriteHeader(status)
		w.Write(s.out)
	}
}

// chooseStatus decides the final status of a non-health request. Chaos
// outranks the request's own knob: an injected error_rate 500 first, then an
// injected status, then the status knob, else 200.
func chooseStatus(chaos *Chaos, k *Knobs, roll func() float64) int {
	switch {
	case chaos.ErrorRate > 0 && roll() < chaos.ErrorRate:
		return http.StatusInternalServerError
	case chaos.Status != 0:
		return chaos.Status
	case k.Status != 0:
		return k.Status
	default:
		return http.StatusOK
	}
}

// bodyAllowed reports whether a final response with this status may carry
// content (RFC 9110 §15.3.5, §15.4.5).
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

func (c *Cell) serveHealth(w http.ResponseWriter) {
	c.counters.healthProbes.Add(1)
	h := w.Header()
	h["X-Cell"] = c.xCell
	h["Content-Type"] = contentTypeJSON
	if c.chaos.Load().Health == HealthFail {
		c.counters.healthFailed.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"fail"}`+"\n")
		return
	}
	io.WriteString(w, `{"status":"ok"}`+"\n")
}

// writeError answers with the cell's own JSON error body.
func (c *Cell) writeError(w http.ResponseWriter, status int, code, message string) {
	c.counters.countStatus(status)
	body := append(jsonstr.Append([]byte(`{"error":`), code), `,"message":`...)
	body = append(jsonstr.Append(body, message), "}\n"...)
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	w.Write(body)
}

// closeConnection drops the connection without a byte of answer, as a
// crashing upstream would.
func (c *Cell) closeConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Only HTTP/1 connections can be hijacked; the mock serves no other.
		c.writeError(w, http.StatusInternalServerError, "close_failed", err.Error())
		return
	}
	c.counters.closed.Add(1)
	conn.Close()
}

func writeSized(w http.ResponseWriter, status int, size int64) {
	h := w.Header()
	h["Content-Type"] = contentTypeBytes
	h["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	w.WriteHeader(status)
	for size > 0 {
		n := min(size, int64(len(fillBytes)))
		if _, err := w.Write(fillBytes[:n]); err != nil {
			return
		}
		size -= n
	}
}

// writeChunks sends a chunked body, flushing every chunk so each one leaves
// as its own HTTP/1.1 chunk (RFC 9112 §7.1). With size the bytes are split
// evenly; without it every chunk is one short line.
func (c *Cell) writeChunks(ctx context.Context, w http.ResponseWriter, status int, k *Knobs) {
	h := w.Header()
	if k.HasSize {
		h["Content-Type"] = contentTypeBytes
	} else {
		h["Content-Type"] = contentTypeText
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	var line []byte
	for i := int64(0); i < k.Chunks; i++ {
		if i > 0 && k.ChunkDelayMs > 0 && !sleep(ctx, k.ChunkDelayMs) {
			c.counters.cancelled.Add(1)
			return
		}
		var err error
		if k.HasSize {
			n := k.Size / k.Chunks
			if i < k.Size%k.Chunks {
				n++
			}
			for n > 0 && err == nil {
				part := min(n, int64(len(fillBytes)))
				_, err = w.Write(fillBytes[:part])
				n -= part
			}
		} else {
			line = append(line[:0], "chunk "...)
			line = strconv.AppendInt(line, i+1, 10)
			line = append(line, '/')
			line = strconv.AppendInt(line, k.Chunks, 10)
			line = append(line, '\n')
			_, err = w.Write(line)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// sleep waits d milliseconds unless ctx ends first (the client went away);
// it reports whether the full delay passed.
func sleep(ctx context.Context, ms int64) bool {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
