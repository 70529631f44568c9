package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"cellbench/controlplane/protocol"
)

// maxNodeIDBytes bounds node_id like the config bounds version: it is shown
// in /status and logs.
const maxNodeIDBytes = 128

// maxNackErrorBytes bounds the nack text kept in /status and the log; the
// code and the start of the message are what an operator needs.
const maxNackErrorBytes = 4 << 10

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	// Routers are not browsers; the default same-origin check stays on so
	// a web page cannot open a session with a user's ambient credentials.
}

// handleConnect runs one router's session: upgrade, hello, then the read
// loop (acks, nacks, pongs) while session.writeLoop sends snapshots and pings.
func (s *server) handleConnect(w http.ResponseWriter, r *http.Request) {
	// Counted before the upgrade: until the hijack, http.Server.Shutdown
	// waits for this handler, so the Add cannot race serve's final Wait.
	s.sessions.Add(1)
	defer s.sessions.Done()
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with the HTTP error
	}
	conn.SetReadLimit(protocol.MaxSnapshotFrameBytes)

	hello, err := readHello(conn, s.timing.helloTimeout)
	if err != nil {
		s.log.Warn("router_refused", "remote", r.RemoteAddr, "error", err.Error())
		_ = conn.WriteControl(websocket.CloseMessage, closeMessage(closeCodeFor(err), err.Error()), time.Now().Add(closeGrace))
		conn.Close()
		return
	}

	sess := newSession(conn, hello.NodeID, hello.Router, s.metrics)
	heard := func() { _ = conn.SetReadDeadline(time.Now().Add(s.timing.silenceTimeout)) }
	heard()
	conn.SetPongHandler(func(string) error { heard(); return nil })
	conn.SetPingHandler(func(data string) error {
		heard()
		_ = conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.timing.writeTimeout))
		return nil
	})
	go sess.writeLoop(s.timing)
	if !s.hub.join(sess) {
		sess.close(websocket.CloseGoingAway, "control plane shutting down")
		return
	}
	s.log.Info("router_connected", "node_id", hello.NodeID, "router", hello.Router,
		"config_version", hello.ConfigVersion, "remote", r.RemoteAddr)

	readErr := s.readLoop(sess, heard)
	sess.close(closeCodeFor(readErr), readErr.Error())
	s.hub.leave(sess)
	s.log.Info("router_disconnected", "node_id", hello.NodeID, "reason", sess.closeReason())
}

// readLoop handles the router's frames until the connection fails; it
// returns why.
func (s *server) readLoop(sess *session, heard func()) error {
	for {
		_, frame, err := sess.conn.ReadMessage()
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return fmt.Errorf("silent for %v (no pong, no frame): %w", s.timing.silenceTimeout, err)
		}
		if err != nil {
			return err
		}
		heard()
		var msg protocol.Message
		if err := json.Unmarshal(frame, &msg); err != nil {
			return fmt.Errorf("%w: undecodable frame: %v", errProtocol, err)
		}
		switch msg.Type {
		case protocol.TypeAck:
			// Counted first: what /status shows is then already in /metrics.
			s.metrics.acked(sess, msg.Version)
			s.hub.acked(sess, msg.Version)
			s.log.Info("router_acked", "node_id", sess.nodeID, "version", msg.Version)
		case protocol.TypeNack:
			errText := truncate(msg.Error, maxNackErrorBytes)
			s.metrics.nacked(sess, msg.Version)
			s.hub.nacked(sess, msg.Version, errText)
			s.log.Warn("router_nacked", "node_id", sess.nodeID, "version", msg.Version, "error", errText)
		default:
			// Skipped rather than fatal, so a newer router can add frames.
			s.log.Debug("router_frame_ignored", "node_id", sess.nodeID, "type", msg.Type)
		}
	}
}

// errProtocol marks a peer that broke the protocol (closed with 1008).
var errProtocol = errors.New("protocol violation")

func readHello(conn *websocket.Conn, timeout time.Duration) (protocol.Message, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	var hello protocol.Message
	_, frame, err := conn.ReadMessage()
	if err != nil {
		return hello, fmt.Errorf("waiting for hello: %w", err)
	}
	if err := json.Unmarshal(frame, &hello); err != nil {
		return hello, fmt.Errorf("%w: undecodable hello: %v", errProtocol, err)
	}
	switch {
	case hello.Type != protocol.TypeHello:
		return hello, fmt.Errorf("%w: first frame is %q, not hello", errProtocol, hello.Type)
	case hello.NodeID == "" || len(hello.NodeID) > maxNodeIDBytes || !visibleASCII(hello.NodeID):
		return hello, fmt.Errorf("%w: node_id must be 1 to %d visible ASCII characters", errProtocol, maxNodeIDBytes)
	case hello.Router != protocol.RouterGo && hello.Router != protocol.RouterPingora:
		return hello, fmt.Errorf("%w: router must be %q or %q", errProtocol, protocol.RouterGo, protocol.RouterPingora)
	}
	return hello, nil
}

// closeCodeFor picks the close code that tells the router why it was dropped.
func closeCodeFor(err error) int {
	switch {
	case errors.Is(err, errProtocol):
		return websocket.ClosePolicyViolation
	case errors.Is(err, websocket.ErrReadLimit):
		return websocket.CloseMessageTooBig
	default:
		return websocket.CloseGoingAway
	}
}

// closeMessage builds a close frame payload, cutting the reason to what a
// control frame can carry (RFC 6455 section 5.5: 125 bytes with the code).
func closeMessage(code int, reason string) []byte {
	return websocket.FormatCloseMessage(code, truncate(reason, 123))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
