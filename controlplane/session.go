package main

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// session is one connected router. Its send queue holds at most one
// snapshot: every snapshot is a full document, so a newer one makes any
// older unsent one worthless and replaces it. That keeps the queue bounded
// without ever dropping the newest state; a router that cannot take even
// that (its write stalls past writeTimeout) is disconnected and resyncs on
// reconnect.
type session struct {
	conn    *websocket.Conn
	nodeID  string
	router  string
	metrics *metrics

	mu       sync.Mutex
	pending  *document     // the newest snapshot not yet written
	wake     chan struct{} // capacity 1: "pending changed"
	pushed   string        // version of the last snapshot sent and not yet answered
	pushedAt time.Time

	closeOnce sync.Once
	reason    string        // why the session ended; set once, before done is closed
	done      chan struct{} // closed when the session ends
}

func newSession(conn *websocket.Conn, nodeID, router string, m *metrics) *session {
	return &session{
		conn:    conn,
		nodeID:  nodeID,
		router:  router,
		metrics: m,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// offer queues d, superseding any snapshot still waiting. It never blocks,
// so one slow router cannot hold up a broadcast.
func (s *session) offer(d *document) {
	s.mu.Lock()
	s.pending = d
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already due; it will see the newest pending
	}
}

// take removes and returns the queued snapshot (nil if none).
func (s *session) take() *document {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.pending
	s.pending = nil
	return d
}

// pushing records that d is being written, for the push-to-ack latency.
// Before the write, not after: the router's ack can be read before the
// write call has returned.
func (s *session) pushing(d *document) {
	s.metrics.pushes.Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushed, s.pushedAt = d.version, time.Now()
}

// answered reports how long ago the snapshot of version was written, if it
// is the last one written and not yet answered, and marks it answered.
func (s *session) answered(version string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushed == "" || s.pushed != version {
		return 0, false
	}
	s.pushed = ""
	return time.Since(s.pushedAt), true
}

// writeLoop is the only writer of data frames on the connection: it sends
// queued snapshots and the periodic pings until the session ends.
func (s *session) writeLoop(t timing) {
	ping := time.NewTicker(t.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			d := s.take()
			if d == nil {
				continue
			}
			_ = s.conn.SetWriteDeadline(time.Now().Add(t.writeTimeout))
			s.pushing(d)
			if err := s.conn.WritePreparedMessage(d.frame); err != nil {
				s.close(websocket.CloseGoingAway, "snapshot write failed: "+err.Error())
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeTimeout)); err != nil {
				s.close(websocket.CloseGoingAway, "ping write failed: "+err.Error())
				return
			}
		}
	}
}

// close ends the session once: a best-effort close frame with code and
// reason, then the socket, which unblocks the reader and the writer. The
// first caller's reason is the one kept: a failed write closes the socket,
// and the reader's "use of closed connection" that follows is not the cause.
func (s *session) close(code int, reason string) {
	s.closeOnce.Do(func() {
		s.reason = reason
		_ = s.conn.WriteControl(websocket.CloseMessage, closeMessage(code, reason), time.Now().Add(closeGrace))
		_ = s.conn.Close()
		close(s.done)
	})
}

// closeReason is the reason given to the first close; call it after close.
func (s *session) closeReason() string {
	<-s.done
	return s.reason
}
