package main

import (
	"sort"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"cellbench/controlplane/protocol"
)

// maxRetainedNodes bounds how many disconnected routers /status remembers;
// the oldest disconnects are forgotten first.
const maxRetainedNodes = 1024

// hub owns the current document, the connected sessions and what each
// router last reported. One mutex covers all three so that a router that
// joins during a broadcast gets either the old document and then the new
// one, or the new one directly — never neither.
type hub struct {
	mu       sync.Mutex
	current  *document
	sessions map[string]*session // by node_id
	nodes    map[string]*node    // by node_id; outlives the session
	closing  bool                // set by closeAll: no session may join after it
	leaves   uint64              // counts disconnects, to order them
}

// node is what the hub knows about one router: what /status reports, and
// when it left.
type node struct {
	protocol.NodeStatus

	leftAt uint64 // hub.leaves at the disconnect: smaller is older
}

func newHub(initial *document) *hub {
	return &hub{
		current:  initial,
		sessions: make(map[string]*session),
		nodes:    make(map[string]*node),
	}
}

func (h *hub) document() *document {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current
}

// publish makes d current and queues it for every connected router.
// Queuing never blocks (see session.offer), so the lock is held briefly.
func (h *hub) publish(d *document) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current = d
	for _, s := range h.sessions {
		s.offer(d)
	}
}

// join registers a session after its hello and queues the current
// document for it. A session already registered under the same node_id
// (a router that restarted before its old connection timed out) is closed:
// one node, one connection. It reports false once shutdown has begun.
func (h *hub) join(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	if old := h.sessions[s.nodeID]; old != nil {
		go old.close(websocket.ClosePolicyViolation, "replaced by a newer connection from the same node_id")
	}
	h.sessions[s.nodeID] = s
	n := h.nodes[s.nodeID]
	if n == nil {
		n = &node{NodeStatus: protocol.NodeStatus{NodeID: s.nodeID}}
		h.nodes[s.nodeID] = n
	}
	n.Router = s.router
	n.Connected = true
	n.ConnectedAt = time.Now().UTC()
	s.offer(h.current)
	return true
}

// leave unregisters s if it is still the node's session.
func (h *hub) leave(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.nodeID] != s {
		return // already replaced by a newer connection
	}
	delete(h.sessions, s.nodeID)
	n := h.nodes[s.nodeID]
	n.Connected = false
	h.leaves++
	n.leftAt = h.leaves
	h.forgetOldestIfFull()
}

func (h *hub) forgetOldestIfFull() {
	if len(h.nodes) <= maxRetainedNodes {
		return
	}
	var oldest *node
	for _, n := range h.nodes {
		if !n.Connected && (oldest == nil || n.leftAt < oldest.leftAt) {
			oldest = n
		}
	}
	if oldest != nil {
		delete(h.nodes, oldest.NodeID)
	}
}

// acked records that s applied version.
func (h *hub) acked(s *session, version string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.nodeID] != s {
		return
	}
	n := h.nodes[s.nodeID]
	at := time.Now().UTC()
	n.AckedVersion, n.AckedAt = &version, &at
}

// nacked records that s rejected version. last_nack stays until a later
// nack replaces it: it is the router's most recent refusal, and
// acked_version says what it serves now.
func (h *hub) nacked(s *session, version, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.nodeID] != s {
		return
	}
	h.nodes[s.nodeID].LastNack = &protocol.LastNack{Version: version, Error: errText}
}

func (h *hub) connectedNodes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *hub) status() protocol.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	view := protocol.Status{Version: h.current.version, Nodes: make([]protocol.NodeStatus, 0, len(h.nodes))}
	for _, n := range h.nodes {
		view.Nodes = append(view.Nodes, n.NodeStatus)
	}
	sort.Slice(view.Nodes, func(i, j int) bool { return view.Nodes[i].NodeID < view.Nodes[j].NodeID })
	return view
}

// closeAll ends every session with code and reason and refuses new ones
// (shutdown).
func (h *hub) closeAll(code int, reason string) {
	h.mu.Lock()
	h.closing = true
	sessions := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() { defer wg.Done(); s.close(code, reason) }()
	}
	wg.Wait()
}
