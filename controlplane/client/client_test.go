package client

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cellbench/config"
	"cellbench/controlplane/protocol"
	"cellbench/internal/testkit"
)

// fakeControlPlane accepts one connection at a time and hands it to the test.
type fakeControlPlane struct {
	*httptest.Server
	conns   chan *websocket.Conn
	headers chan http.Header
}

func newFakeControlPlane(t *testing.T) *fakeControlPlane {
	t.Helper()
	f := &fakeControlPlane{conns: make(chan *websocket.Conn, 4), headers: make(chan http.Header, 4)}
	upgrader := websocket.Upgrader{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.headers <- r.Header.Clone()
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.conns <- conn
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeControlPlane) url() string { return "ws" + strings.TrimPrefix(f.URL, "http") + "/connect" }

func (f *fakeControlPlane) accept(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case conn := <-f.conns:
		t.Cleanup(func() { conn.Close() })
		return conn
	case <-time.After(5 * time.Second):
		t.Fatal("router did not connect")
		return nil
	}
}

func readMessage(t *testing.T, conn *websocket.Conn) protocol.Message {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg protocol.Message
	if err := conn.ReadJSON(&msg); err != nil {
		t.Fatalf("read: %v", err)
	}
	return msg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// startRun runs the client until the test ends and waits for Run to return.
func startRun(t *testing.T, opts Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

func TestHelloSnapshotAckAndNack(t *testing.T) {
	cp := newFakeControlPlane(t)
	var mu sync.Mutex
	var applied []string
	connected := make(chan bool, 4)
	startRun(t, Options{
		URL: cp.url(), Token: "s3cret", NodeID: "edge-1",
		CurrentVersion: func() string { return "v0" },
		Apply: func(version string, doc []byte) error {
			if strings.Contains(string(doc), "bad") {
				return errors.New("kind_invalid: kind must be shared or dedicated")
			}
			mu.Lock()
			applied = append(applied, version+"="+string(doc))
			mu.Unlock()
			return nil
		},
		OnConnected: func(c bool) { connected <- c },
		Logger:      quietLogger(),
	})

	conn := cp.accept(t)
	if got := (<-cp.headers).Get("Authorization"); got != "Bearer s3cret" {
		t.Fatalf("Authorization = %q", got)
	}
	hello := readMessage(t, conn)
	if !reflect.DeepEqual(hello, protocol.Hello("edge-1", "go", "v0")) {
		t.Fatalf("hello = %+v", hello)
	}
	if c := <-connected; !c {
		t.Fatal("OnConnected(false) before any disconnect")
	}

	if err := conn.WriteJSON(protocol.ConfigSnapshot("v1", json.RawMessage(`{"x":1}`))); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, conn); !reflect.DeepEqual(got, protocol.Ack("v1")) {
		t.Fatalf("reply = %+v, want ack v1", got)
	}
	if err := conn.WriteJSON(protocol.ConfigSnapshot("v2", json.RawMessage(`{"bad":1}`))); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, conn); !reflect.DeepEqual(got, protocol.Nack("v2", "kind_invalid: kind must be shared or dedicated")) {
		t.Fatalf("reply = %+v, want nack v2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 1 || applied[0] != `v1={"x":1}` {
		t.Fatalf("applied = %q", applied)
	}
}

func TestReconnectsAfterTheControlPlaneDropsIt(t *testing.T) {
	cp := newFakeControlPlane(t)
	connected := make(chan bool, 8)
	startRun(t, Options{
		URL:         cp.url(),
		Apply:       func(string, []byte) error { return nil },
		OnConnected: func(c bool) { connected <- c },
		Logger:      quietLogger(),
	})
	first := cp.accept(t)
	readMessage(t, first)
	first.Close()
	second := cp.accept(t)
	if hello := readMessage(t, second); hello.Type != protocol.TypeHello {
		t.Fatalf("first frame after reconnect = %+v", hello)
	}
	want := []bool{true, false, true}
	for i, w := range want {
		if got := <-connected; got != w {
			t.Fatalf("OnConnected call %d = %v, want %v", i, got, w)
		}
	}
}

func TestOversizeSnapshotFrameIsRefused(t *testing.T) {
	cp := newFakeControlPlane(t)
	applied := make(chan string, 1)
	logs := &testkit.Buffer{}
	startRun(t, Options{
		URL:    cp.url(),
		Apply:  func(version string, _ []byte) error { applied <- version; return nil },
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	conn := cp.accept(t)
	readMessage(t, conn)

	// Only the head of a 32 MiB frame (RFC 6455 section 5.2) is sent: the
	// client must hang up on the announced length alone (1009), without
	// waiting for a payload.
	head := []byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(head[2:], 32<<20)
	if _, err := conn.NetConn().Write(head); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("read after an oversize frame head: %v, want close 1009", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), websocket.ErrReadLimit.Error()) {
		if time.Now().After(deadline) {
			t.Fatalf("the client did not end the connection on the read limit; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case v := <-applied:
		t.Fatalf("Apply called with %q for an oversize frame", v)
	default:
	}
}

// A slow Apply must not stop the client from answering pings, and the
// snapshots that arrive meanwhile collapse into the newest one.
func TestSlowApplyKeepsAnsweringPingsAndAppliesOnlyTheNewest(t *testing.T) {
	cp := newFakeControlPlane(t)
	entered := make(chan string, 4)
	release := make(chan struct{})
	startRun(t, Options{
		URL: cp.url(),
		Apply: func(version string, _ []byte) error {
			entered <- version
			if version == "v1" {
				<-release
			}
			return nil
		},
		Logger: quietLogger(),
	})
	conn := cp.accept(t)
	readMessage(t, conn)
	for _, v := range []string{"v1", "v2", "v3"} {
		if err := conn.WriteJSON(protocol.ConfigSnapshot(v, json.RawMessage(`{}`))); err != nil {
			t.Fatal(err)
		}
		if v == "v1" {
			if got := <-entered; got != "v1" {
				t.Fatalf("applying %s, want v1", got)
			}
		}
	}

	pong := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	replies := make(chan protocol.Message, 4)
	go func() { // reading drives the pong handler
		for {
			var msg protocol.Message
			if err := conn.ReadJSON(&msg); err != nil {
				close(replies)
				return
			}
			replies <- msg
		}
	}()
	if err := conn.WriteControl(websocket.PingMessage, []byte("still there?"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-pong:
		if data != "still there?" {
			t.Fatalf("pong = %q", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong while Apply was blocked")
	}
	select {
	case msg := <-replies:
		t.Fatalf("got %+v while Apply was blocked", msg)
	default:
	}

	close(release)
	if got := <-entered; got != "v3" {
		t.Fatalf("applied %s after v1, want v3", got)
	}
	select {
	case v := <-entered:
		t.Fatalf("also applied %s", v)
	case <-time.After(100 * time.Millisecond):
	}
}

// The largest snapshot the control plane can send — a 16 MiB document with
// a 128-character version that JSON-escapes to 6 bytes a character — must
// fit under the read limit.
func TestLargestSnapshotFitsTheReadLimit(t *testing.T) {
	cp := newFakeControlPlane(t)
	applied := make(chan int, 1)
	startRun(t, Options{
		URL:    cp.url(),
		Apply:  func(_ string, doc []byte) error { applied <- len(doc); return nil },
		Logger: quietLogger(),
	})
	conn := cp.accept(t)
	readMessage(t, conn)

	doc := make([]byte, config.MaxDocumentBytes)
	copy(doc, `{"x":"`)
	for i := 6; i < len(doc)-2; i++ {
		doc[i] = 'a'
	}
	copy(doc[len(doc)-2:], `"}`)
	version := strings.Repeat("<", config.MaxVersionBytes)
	// Built by hand: json.Marshal would spend seconds re-compacting the
	// document under -race. The version is escaped as encoding/json does.
	escaped := strings.Repeat(`\u003c`, config.MaxVersionBytes)
	frame := append([]byte(`{"type":"config_snapshot","version":"`+escaped+`","config":`), doc...)
	frame = append(frame, '}')
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-applied:
		if n != len(doc) {
			t.Fatalf("Apply got %d bytes, want %d", n, len(doc))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the largest snapshot was not applied")
	}
	if got := readMessage(t, conn); !reflect.DeepEqual(got, protocol.Ack(version)) {
		t.Fatalf("reply = %+v", got.Type)
	}
}

// A control plane that goes silent without closing (a partition, a hung
// process) is given up after the silence timeout, and the client dials again.
func TestSilentControlPlaneIsGivenUp(t *testing.T) {
	shortenSilenceTimeout(t, 300*time.Millisecond)

	cp := newFakeControlPlane(t)
	connected := make(chan bool, 8)
	startRun(t, Options{
		URL:         cp.url(),
		Apply:       func(string, []byte) error { return nil },
		OnConnected: func(c bool) { connected <- c },
		Logger:      quietLogger(),
	})
	first := cp.accept(t)
	readMessage(t, first)
	started := time.Now()
	// Stay silent: no snapshot, no ping, and never read (no close handshake).
	second := cp.accept(t)
	if waited := time.Since(started); waited < silenceTimeout {
		t.Fatalf("gave up after %v, before the %v silence timeout", waited, silenceTimeout)
	}
	if hello := readMessage(t, second); hello.Type != protocol.TypeHello {
		t.Fatalf("first frame after reconnect = %+v", hello)
	}
	for i, want := range []bool{true, false, true} {
		if got := <-connected; got != want {
			t.Fatalf("OnConnected call %d = %v, want %v", i, got, want)
		}
	}
}

func TestPingsKeepTheConnectionAlive(t *testing.T) {
	shortenSilenceTimeout(t, 300*time.Millisecond)

	cp := newFakeControlPlane(t)
	startRun(t, Options{URL: cp.url(), Apply: func(string, []byte) error { return nil }, Logger: quietLogger()})
	conn := cp.accept(t)
	readMessage(t, conn)
	for range 10 { // 1 s, more than three silence timeouts
		if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatalf("ping: %v (the client hung up)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-cp.conns:
		t.Fatal("the client reconnected although pings kept coming")
	default:
	}
}

// shortenSilenceTimeout sets silenceTimeout for one test. The restore is a
// cleanup registered before startRun's, so it runs after Run has returned.
func shortenSilenceTimeout(t *testing.T, d time.Duration) {
	old := silenceTimeout
	silenceTimeout = d
	t.Cleanup(func() { silenceTimeout = old })
}
