// Package protocol is the wire format of the cellbench control-plane
// protocol (contract section 7): JSON text frames over one WebSocket per
// router, shared by the control plane and the Go router's client so that
// both sides spell every field and limit the same way.
package protocol

import (
	"encoding/json"
	"time"

	"cellbench/config"
)

// Frame types.
const (
	TypeHello          = "hello"           // router → CP, first frame
	TypeConfigSnapshot = "config_snapshot" // CP → router, after hello and on every change
	TypeAck            = "ack"             // router → CP, snapshot applied
	TypeNack           = "nack"            // router → CP, snapshot rejected
)

// Router names a hello may carry (the X-Router values).
const (
	RouterGo      = "go"
	RouterPingora = "pingora"
)

// Timing shared by both ends.
const (
	// PingInterval is how often the control plane pings each router.
	PingInterval = 5 * time.Second
	// SilenceTimeout is how long either side waits without receiving any
	// frame (pings and pongs count) before it gives the connection up.
	SilenceTimeout = 15 * time.Second
	// ReconnectMin and ReconnectMax bound the router's reconnect backoff.
	ReconnectMin = 200 * time.Millisecond
	ReconnectMax = 10 * time.Second
)

// MaxSnapshotFrameBytes is the read limit for frames in both directions:
// the largest valid document (16 MiB) plus room for the envelope, whose only
// variable part is the version (at most 128 characters, 6 bytes each when
// JSON-escaped). A bigger frame is refused from its header, never buffered.
// Routers only send hello, ack and nack, but a nack may quote a large piece
// of the document it rejects; a tighter limit there would turn such a nack
// into a reconnect loop.
const MaxSnapshotFrameBytes = config.MaxDocumentBytes + 64<<10

// Message is every frame of the protocol; Type says which fields are set.
// One struct (rather than one per type) lets a receiver decode a frame once
// and switch on Type.
type Message struct {
	Type string `json:"type"`

	// hello
	NodeID        string `json:"node_id,omitempty"`
	Router        string `json:"router,omitempty"`
	ConfigVersion string `json:"config_version,omitempty"`

	// config_snapshot, ack, nack
	Version string `json:"version,omitempty"`

	// config_snapshot: the full document, exactly as the control plane holds it.
	Config json.RawMessage `json:"config,omitempty"`

	// nack: the rejection, "<code>: <message>".
	Error string `json:"error,omitempty"`
}

// Hello is the first frame a router sends.
func Hello(nodeID, router, configVersion string) Message {
	return Message{Type: TypeHello, NodeID: nodeID, Router: router, ConfigVersion: configVersion}
}

// ConfigSnapshot carries a full document.
func ConfigSnapshot(version string, doc json.RawMessage) Message {
	return Message{Type: TypeConfigSnapshot, Version: version, Config: doc}
}

// Ack reports that version was applied.
func Ack(version string) Message {
	return Message{Type: TypeAck, Version: version}
}

// Nack reports that version was rejected, with the rejection text.
func Nack(version, errText string) Message {
	return Message{Type: TypeNack, Version: version, Error: errText}
}

// Status is the body of GET /status.
type Status struct {
	Version string       `json:"version"`
	Nodes   []NodeStatus `json:"nodes"`
}

// NodeStatus is what GET /status reports about one router.
type NodeStatus struct {
	NodeID       string     `json:"node_id"`
	Router       string     `json:"router"`
	Connected    bool       `json:"connected"`
	AckedVersion *string    `json:"acked_version"` // null until the first ack
	AckedAt      *time.Time `json:"acked_at"`
	LastNack     *LastNack  `json:"last_nack"`
	ConnectedAt  time.Time  `json:"connected_at"`
}

// LastNack is the last rejection a router reported.
type LastNack struct {
	Version string `json:"version"`
	Error   string `json:"error"`
}
