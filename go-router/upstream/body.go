package upstream

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// BodyReader reads an upstream response body under the response body idle
// timeout (response_body_idle_ms): no read may wait longer for the next
// bytes. The own client's bodies use the connection's read deadline; an
// http.Transport body, whose connection is out of reach, is closed by a
// timer reset around every read. It is a value so that it stays on the
// handler's stack.
type BodyReader struct {
	body  io.ReadCloser
	idle  time.Duration
	owned deadlineBody // the tuned pool's bodies
	t     *bodyTimer   // the Transport case only
}

type bodyTimer struct {
	timer *time.Timer
	fired atomic.Bool
}

// NewBodyReader reads body with no read waiting longer than idle (0: no limit).
func NewBodyReader(body io.ReadCloser, idle time.Duration) BodyReader {
	r := BodyReader{body: body, idle: idle}
	r.owned, _ = body.(deadlineBody)
	return r
}

func (r *BodyReader) Read(p []byte) (int, error) {
	if r.idle <= 0 {
		return r.body.Read(p)
	}
	if r.owned != nil {
		return r.owned.readWithin(p, r.idle)
	}
	if r.t == nil {
		t, body := &bodyTimer{}, r.body
		t.timer = time.AfterFunc(r.idle, func() {
			t.fired.Store(true)
			body.Close()
		})
		r.t = t
	} else {
		r.t.timer.Reset(r.idle)
	}
	n, err := r.body.Read(p)
	r.t.timer.Stop()
	return n, err
}

// TimedOut reports whether err ended the body on the idle timeout.
func (r *BodyReader) TimedOut(err error) bool {
	return (r.t != nil && r.t.fired.Load()) || errors.Is(err, os.ErrDeadlineExceeded)
}

// Stop ends the timer of a Transport body.
func (r *BodyReader) Stop() {
	if r.t != nil {
		r.t.timer.Stop()
	}
}
