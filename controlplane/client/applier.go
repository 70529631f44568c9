package client

import (
	"fmt"
	"sync"

	"github.com/gorilla/websocket"

	"cellbench/controlplane/protocol"
)

// applier hands snapshots to the router's Apply one at a time and answers
// each with ack or nack. It holds at most one waiting snapshot: snapshots
// are full documents, so when several arrive during one slow Apply only
// the newest is applied (and answered); the control plane tracks what each
// router acked, not every version it sent.
type applier struct {
	conn  *websocket.Conn
	apply func(version string, doc []byte) error

	mu      sync.Mutex
	pending *protocol.Message
	err     error // why answering failed; ends the session

	wake chan struct{} // capacity 1
	quit chan struct{}
	done chan struct{}
}

func newApplier(conn *websocket.Conn, apply func(string, []byte) error) *applier {
	a := &applier{
		conn:  conn,
		apply: apply,
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go a.loop()
	return a
}

// offer queues msg, replacing a snapshot that has not been applied yet.
func (a *applier) offer(msg protocol.Message) {
	a.mu.Lock()
	a.pending = &msg
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *applier) loop() {
	defer close(a.done)
	for {
		select {
		case <-a.quit:
			return
		case <-a.wake:
		}
		a.mu.Lock()
		msg := a.pending
		a.pending = nil
		a.mu.Unlock()
		if msg == nil {
			continue
		}
		reply := protocol.Ack(msg.Version)
		if err := a.apply(msg.Version, msg.Config); err != nil {
			reply = protocol.Nack(msg.Version, err.Error())
		}
		// This goroutine is the connection's only writer of data frames
		// once hello is sent; pongs and close go through WriteControl,
		// which may run concurrently.
		if err := writeJSON(a.conn, reply); err != nil {
			a.mu.Lock()
			a.err = fmt.Errorf("send %s: %w", reply.Type, err)
			a.mu.Unlock()
			a.conn.Close() // unblocks the read loop, which ends the session
			return
		}
	}
}

// failure is the write error that ended the session, if any.
func (a *applier) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// stop waits for an Apply in progress to return, so Run never leaves one
// running behind it.
func (a *applier) stop() {
	close(a.quit)
	<-a.done
}
