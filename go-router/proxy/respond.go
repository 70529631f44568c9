package proxy

import (
	"io"
	"net/http"
	"sync"

	"cellbench/go-router/h1"
	"cellbench/go-router/upstream"
)

// copyBufferPool holds the buffers response bodies are copied through.
var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forwardResponse streams an upstream response to the client. Bodies of unknown
// length (chunked, or ended by close) are flushed after every read so that
// streamed responses reach the client as they arrive; bodies with a length
// are left to the server's buffering.
func (rt *Router) forwardResponse(w http.ResponseWriter, ex *Exchange, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	h1.CopyEndToEnd(h, resp.Header)
	ex.setHeaders(h)
	ex.status = resp.StatusCode
	ex.wroteHeader = true
	w.WriteHeader(resp.StatusCode)

	flusher, _ := w.(http.Flusher)
	streaming := resp.ContentLength < 0 && flusher != nil
	bufp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bufp)
	buf := *bufp
	body := upstream.NewBodyReader(resp.Body, ex.serving.BodyIdle)
	defer body.Stop()
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			written, werr := w.Write(buf[:n])
			ex.bytesOut += int64(written)
			if werr != nil {
				ex.errCode = ClientClosed
				return
			}
			if streaming {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The upstream broke or stalled mid-body. The status is
			// already sent, so the only honest signal left is an aborted
			// response: the connection closes before the body's end (no
			// last chunk, or fewer bytes than Content-Length).
			ex.errCode = UpstreamError
			if body.TimedOut(rerr) {
				ex.errCode = UpstreamTimeout
			}
			panic(http.ErrAbortHandler)
		}
	}
	for name, values := range resp.Trailer {
		h[http.TrailerPrefix+name] = values
	}
	// A response of known length is complete now: send it before metrics
	// and the access log run, so that they stay off the client's wait.
	// A chunked one keeps its last chunk until the handler returns.
	if resp.ContentLength >= 0 && flusher != nil {
		flusher.Flush()
	}
}
