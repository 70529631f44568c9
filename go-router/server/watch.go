package server

import (
	"context"
	"errors"
	"os"
	"time"
)

// watchDelay is how long a fast-path request runs before the connection is
// watched for the client going away. net/http watches from the start with
// a goroutine per request; most requests end long before this, so they
// only pay for a timer.
const watchDelay = 10 * time.Millisecond

// aLongTimeAgo is a deadline in the past, to cut a pending read short.
var aLongTimeAgo = time.Unix(1, 0)

// clientWatch notices a client that closes its connection while its
// request is being handled, and cancels the request's context. The read
// side of the connection is idle meanwhile: fast-path requests have no
// body, and the next request is read only after this one.
type clientWatch struct {
	c      *conn
	timer  *time.Timer
	cancel context.CancelFunc
	ended  chan struct{}
	// Set by run before it signals ended.
	b    [1]byte
	got  int
	gone bool
}

func (w *clientWatch) arm(cancel context.CancelFunc) {
	w.cancel, w.got, w.gone = cancel, 0, false
	if w.timer == nil {
		w.ended = make(chan struct{}, 1)
		w.timer = time.AfterFunc(watchDelay, w.run)
		return
	}
	w.timer.Reset(watchDelay)
}

func (w *clientWatch) run() {
	n, err := w.c.rwc.Read(w.b[:])
	w.got = n
	if n == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
		w.gone = true
		w.cancel()
	}
	w.ended <- struct{}{}
}

// disarm stops the watch and reports whether the client went away. A byte
// the watch read (the start of a pipelined request) is kept for the next
// read.
func (w *clientWatch) disarm() (gone bool) {
	if w.timer.Stop() {
		return false
	}
	_ = w.c.rwc.SetReadDeadline(aLongTimeAgo)
	<-w.ended
	_ = w.c.rwc.SetReadDeadline(time.Time{})
	if w.got > 0 {
		w.c.in.pending = append(w.c.in.pending, w.b[:w.got]...)
	}
	return w.gone
}
