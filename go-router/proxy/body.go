package proxy

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
)

// errBodyTooLarge ends a request body that grew past the placement's limit.
var errBodyTooLarge = errors.New("request body larger than max_request_body_bytes")

// requestBody is the client body as the transport reads it: it counts
// bytes (a body that was read from cannot be replayed), enforces the body
// limit on bodies without a usable Content-Length, and ignores Close so
// that a failed attempt does not close a body that may still be replayed
// by a retry after a connect failure. The server closes the real body.
//
// The transport reads it on its own goroutine while the handler inspects
// it after the round trip, hence the atomics.
type requestBody struct {
	body   io.ReadCloser
	limit  int64 // 0 = none
	read   atomic.Int64
	tooBig atomic.Bool
	// broken is set when reading from the client failed (a malformed
	// chunk, a client that left): the attempt failed by the client's fault.
	broken atomic.Bool
	// stalled: the read failed on the client-body idle timeout (the
	// server's read deadline, go-router/guard).
	stalled atomic.Bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		b.broken.Store(true)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.stalled.Store(true)
		}
	}
	total := b.read.Add(int64(n))
	if b.limit > 0 && total > b.limit {
		b.tooBig.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}

func (b *requestBody) Close() error { return nil }

// consumed reports whether any byte was handed to an upstream.
func (b *requestBody) consumed() bool { return b.read.Load() > 0 }
