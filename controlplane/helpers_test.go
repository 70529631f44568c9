package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cellbench/config"
	"cellbench/controlplane/client"
)

// testTiming shortens the protocol's clocks so liveness tests run in
// fractions of a second.
func testTiming() timing {
	return timing{
		pingInterval:   100 * time.Millisecond,
		silenceTimeout: 600 * time.Millisecond,
		writeTimeout:   2 * time.Second,
		helloTimeout:   time.Second,
		pollInterval:   100 * time.Millisecond,
	}
}

// testCP is a control plane on a real loopback listener.
type testCP struct {
	srv     *server
	path    string
	baseURL string // http://127.0.0.1:PORT
	wsURL   string // ws://127.0.0.1:PORT/connect
}

type cpOptions struct {
	token  string
	timing timing
	doc    []byte
	// logs, if set, receives the control plane's event log.
	logs io.Writer
	// sendBuffer, if set, shrinks the kernel send buffer of every accepted
	// connection, so a router that stops reading blocks writes quickly.
	sendBuffer int
}

// smallSendBufferListener applies cpOptions.sendBuffer.
type smallSendBufferListener struct {
	net.Listener
	size int
}

func (l smallSendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}

func startCP(t testing.TB, opts cpOptions) *testCP {
	t.Helper()
	if opts.timing == (timing{}) {
		opts.timing = testTiming()
	}
	if opts.doc == nil {
		opts.doc = demoDoc(t, "v1")
	}
	path := filepath.Join(t.TempDir(), "controlplane.json")
	if err := os.WriteFile(path, opts.doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.logs == nil {
		opts.logs = io.Discard
	}
	srv, err := newServer(slog.New(slog.NewJSONHandler(opts.logs, nil)), path, opts.token, opts.timing)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if opts.sendBuffer > 0 {
		ln = smallSendBufferListener{Listener: ln, size: opts.sendBuffer}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("control plane did not shut down")
		}
	})
	return &testCP{srv: srv, path: path, baseURL: "http://" + addr, wsURL: "ws://" + addr + "/connect"}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// demoDoc is the project's example config under another version.
func demoDoc(t testing.TB, version string) []byte {
	t.Helper()
	return docWithPadding(t, version, 0)
}

// docWithPadding makes the example config about n bytes bigger while
// keeping it cheap to validate: tier1's health-check path grows (a valid,
// if unusual, path). Large documents built from many routes would spend
// seconds in validation under -race and blur what a test measures.
func docWithPadding(t testing.TB, version string, n int) []byte {
	t.Helper()
	raw, err := os.ReadFile("../config/examples/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Version = version
	if n > 0 {
		cfg.Placements["tier1"].HealthCheck.Path = "/" + strings.Repeat("p", n)
	}
	doc, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// fakeRouter is an in-process router: the real client package with an
// Apply that validates like a router and records what it applied.
type fakeRouter struct {
	nodeID string

	mu      sync.Mutex
	version string
	applied []string // versions, in order
	changed chan struct{}
}

// startRouter runs a fake router until the test ends. reject, if set,
// decides which versions the router refuses (to provoke a nack).
func startRouter(t testing.TB, cp *testCP, nodeID, token string, reject func(version string) error) *fakeRouter {
	t.Helper()
	r := &fakeRouter{nodeID: nodeID, version: "bootstrap", changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Run(ctx, client.Options{
			URL: cp.wsURL, Token: token, NodeID: nodeID,
			CurrentVersion: r.currentVersion,
			Apply: func(version string, doc []byte) error {
				cfg, err := config.Parse(doc)
				if err != nil {
					return err
				}
				if reject != nil {
					if err := reject(cfg.Version); err != nil {
						return err
					}
				}
				r.mu.Lock()
				r.version = cfg.Version
				r.applied = append(r.applied, version)
				r.mu.Unlock()
				select {
				case r.changed <- struct{}{}:
				default:
				}
				return nil
			},
			Logger: discardLogger(),
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func (r *fakeRouter) currentVersion() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

func (r *fakeRouter) appliedVersions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied...)
}

// statusBody mirrors the contract's GET /status shape independently of the
// server's own types, and is decoded strictly so an extra or renamed field fails.
type statusBody struct {
	Version string       `json:"version"`
	Nodes   []statusNode `json:"nodes"`
}

type statusNode struct {
	NodeID       string     `json:"node_id"`
	Router       string     `json:"router"`
	Connected    bool       `json:"connected"`
	AckedVersion *string    `json:"acked_version"`
	AckedAt      *time.Time `json:"acked_at"`
	LastNack     *struct {
		Version string `json:"version"`
		Error   string `json:"error"`
	} `json:"last_nack"`
	ConnectedAt time.Time `json:"connected_at"`
}

func (cp *testCP) status(t testing.TB) statusBody {
	t.Helper()
	resp, err := http.Get(cp.baseURL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %s", resp.Status)
	}
	var body statusBody
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	return body
}

func (b statusBody) node(id string) (statusNode, bool) {
	for _, n := range b.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return statusNode{}, false
}

// ackedBy reports whether every listed node is connected and acked version.
func (b statusBody) ackedBy(version string, ids ...string) bool {
	for _, id := range ids {
		n, ok := b.node(id)
		if !ok || !n.Connected || n.AckedVersion == nil || *n.AckedVersion != version {
			return false
		}
	}
	return true
}

type apiResponse struct {
	status int
	body   map[string]any
}

func (cp *testCP) put(t testing.TB, token string, doc []byte) apiResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, cp.baseURL+"/config", bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResponse{status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&out.body); err != nil {
		t.Fatalf("PUT /config %s: body is not JSON: %v", resp.Status, err)
	}
	return out
}

func nodeIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return ids
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
