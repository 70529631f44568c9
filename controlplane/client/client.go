// Package client is the router side of the control-plane protocol
// (contract section 7) for the Go router: it keeps one WebSocket to the
// control plane open, hands every config snapshot to the router's Apply
// hook and answers with ack or nack.
//
// It never sits on the request path. The router serves from its last good
// snapshot whether or not the control plane is reachable; Run only swaps
// that snapshot through Apply.
//
// Events: Run logs cp_connected and cp_disconnected itself (contract
// section 4). config_applied / config_rejected belong to Apply, which knows
// what the router did with the document.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"

	"cellbench/controlplane/protocol"
)

// Options configures Run.
type Options struct {
	// URL of the control plane's WebSocket endpoint, e.g. ws://127.0.0.1:8081/connect.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// NodeID names this router in the control plane's /status; empty means
	// "<hostname>-<pid>".
	NodeID string
	// Router is the X-Router value sent in hello; empty means "go".
	Router string
	// CurrentVersion returns the version the router serves now (sent in hello).
	CurrentVersion func() string
	// Apply validates a snapshot and, if valid, swaps it in. A returned
	// error is sent as the nack text, so it should start with its code
	// (config.Error does).
	Apply func(version string, doc []byte) error
	// OnConnected, if set, is called with true once hello has been sent and
	// with false when that connection ends.
	OnConnected func(connected bool)
	// Logger receives the cp_connected / cp_disconnected events; nil means slog.Default().
	Logger *slog.Logger
}

const (
	// handshakeTimeout bounds the TCP connect plus the HTTP upgrade.
	handshakeTimeout = 5 * time.Second
	// writeTimeout bounds one frame write (hello, ack, nack, pong, close).
	writeTimeout = 5 * time.Second
	// stableAfter is how long a connection must have lived for the next
	// reconnect to start again from the shortest backoff: a control plane
	// that accepts and then drops us at once should not be hammered.
	stableAfter = 10 * time.Second
)

// silenceTimeout is protocol.SilenceTimeout; a variable only so that the
// partition test does not have to wait 15 s.
var silenceTimeout = protocol.SilenceTimeout

// Run connects to the control plane and keeps reconnecting, with
// exponential backoff and jitter, until ctx is done. It blocks.
func Run(ctx context.Context, opts Options) {
	opts = opts.withDefaults()
	delay := newBackoff(protocol.ReconnectMin, protocol.ReconnectMax)
	for {
		started := time.Now()
		connected, err := session(ctx, opts)
		if ctx.Err() != nil {
			return
		}
		if connected && time.Since(started) >= stableAfter {
			delay.reset()
		}
		wait := delay.next()
		opts.Logger.Warn("cp_disconnected",
			"url", opts.URL, "node_id", opts.NodeID, "error", err.Error(),
			"was_connected", connected, "retry_in_ms", wait.Milliseconds())
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Router == "" {
		o.Router = protocol.RouterGo
	}
	if o.NodeID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "router"
		}
		o.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.CurrentVersion == nil {
		o.CurrentVersion = func() string { return "" }
	}
	return o
}

// session runs one connection from dial to its end. connected reports
// whether hello was sent; err says why the connection ended.
func session(ctx context.Context, opts Options) (connected bool, err error) {
	header := http.Header{}
	if opts.Token != "" {
		header.Set("Authorization", "Bearer "+opts.Token)
	}
	dialer := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: handshakeTimeout,
	}
	conn, resp, err := dialer.DialContext(ctx, opts.URL, header)
	if err != nil {
		if resp != nil {
			// The control plane answered but refused the upgrade (401 for a wrong token).
			return false, fmt.Errorf("%w: HTTP %d", err, resp.StatusCode)
		}
		return false, err
	}
	defer conn.Close()

	// Leaving: say goodbye with a close frame, then unblock the read below.
	stop := context.AfterFunc(ctx, func() {
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "router stopping")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		conn.Close()
	})
	defer stop()

	conn.SetReadLimit(protocol.MaxSnapshotFrameBytes)
	heard := func() { _ = conn.SetReadDeadline(time.Now().Add(silenceTimeout)) }
	heard()
	conn.SetPingHandler(func(data string) error {
		heard()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		var netErr net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &netErr) && netErr.Timeout()) {
			return nil // the read loop will see the real cause
		}
		return err
	})
	conn.SetPongHandler(func(string) error { heard(); return nil })

	if err := writeJSON(conn, protocol.Hello(opts.NodeID, opts.Router, opts.CurrentVersion())); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	opts.Logger.Info("cp_connected", "url", opts.URL, "node_id", opts.NodeID)
	if opts.OnConnected != nil {
		opts.OnConnected(true)
		defer opts.OnConnected(false)
	}

	// Apply runs beside the read loop, so that a slow Apply never stops
	// pings from being answered (the control plane would drop us).
	applier := newApplier(conn, opts.Apply)
	defer applier.stop()
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			if applyErr := applier.failure(); applyErr != nil {
				return true, applyErr
			}
			return true, err
		}
		heard()
		var msg protocol.Message
		if err := json.Unmarshal(frame, &msg); err != nil {
			return true, fmt.Errorf("undecodable frame from control plane: %w", err)
		}
		if msg.Type != protocol.TypeConfigSnapshot {
			// Unknown frame types are skipped so a newer control plane can
			// add messages without breaking older routers.
			opts.Logger.Debug("cp_frame_ignored", "type", msg.Type)
			continue
		}
		applier.offer(msg)
	}
}

func writeJSON(conn *websocket.Conn, msg protocol.Message) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return conn.WriteMessage(websocket.TextMessage, data)
}
