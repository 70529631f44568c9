package main

import (
	"fmt"
	"testing"
)

func TestHubForgetsTheOldestDisconnectedNodesBeyondItsBound(t *testing.T) {
	h := newHub(&document{version: "v1"})
	live := newSession(nil, "edge-live", "go", nil)
	h.join(live)
	const extra = 5
	for i := range maxRetainedNodes + extra {
		s := newSession(nil, fmt.Sprintf("edge-%05d", i), "go", nil)
		h.join(s)
		h.leave(s)
	}
	st := h.status()
	if len(st.Nodes) != maxRetainedNodes {
		t.Fatalf("%d nodes retained, want %d", len(st.Nodes), maxRetainedNodes)
	}
	seen := map[string]bool{}
	for _, n := range st.Nodes {
		seen[n.NodeID] = true
	}
	if !seen["edge-live"] {
		t.Fatal("a connected node was forgotten")
	}
	for i := range extra + 1 { // the live node takes one slot too
		if id := fmt.Sprintf("edge-%05d", i); seen[id] {
			t.Fatalf("%s, among the oldest disconnects, is still listed", id)
		}
	}
	if id := fmt.Sprintf("edge-%05d", extra+1); !seen[id] {
		t.Fatalf("%s was forgotten too early", id)
	}
}

func TestHubIgnoresAReplacedSession(t *testing.T) {
	h := newHub(&document{version: "v1"})
	old := newSession(nil, "edge-a", "go", nil)
	h.join(old)
	h.acked(old, "v1")
	replacement := newSession(nil, "edge-a", "pingora", nil)
	h.sessions["edge-a"] = replacement // as join does, without closing a nil conn
	h.acked(old, "v0")
	h.nacked(old, "v0", "kind_invalid: late")
	h.leave(old)
	n := h.status().Nodes[0]
	if !n.Connected || *n.AckedVersion != "v1" || n.LastNack != nil {
		t.Fatalf("a replaced session changed the node: %+v", n)
	}
}
