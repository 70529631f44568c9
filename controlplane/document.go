package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gorilla/websocket"

	"cellbench/config"
	"cellbench/controlplane/protocol"
)

// document is one validated config, immutable once built, together with the
// config_snapshot frame that carries it. The frame is encoded once per
// change and written as-is to every router.
type document struct {
	version string
	raw     []byte // the bytes as received from the file or PUT
	frame   *websocket.PreparedMessage
}

// newDocument validates raw with the same rules as the routers. A rejection
// is the *config.Error that the routers would return.
func newDocument(raw []byte) (*document, error) {
	cfg, err := config.Parse(raw)
	if err != nil {
		return nil, err
	}
	// RawMessage is re-encoded compactly by encoding/json, so the frame
	// never exceeds the document (and MaxSnapshotFrameBytes) because of
	// indentation.
	encoded, err := json.Marshal(protocol.ConfigSnapshot(cfg.Version, raw))
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	frame, err := websocket.NewPreparedMessage(websocket.TextMessage, encoded)
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	return &document{version: cfg.Version, raw: raw, frame: frame}, nil
}

// sameBytes reports whether d holds exactly raw (used to skip no-op reloads).
func (d *document) sameBytes(raw []byte) bool {
	return d != nil && bytes.Equal(d.raw, raw)
}
