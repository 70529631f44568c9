package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cellbench/config"
	"cellbench/controlplane/protocol"
	"cellbench/internal/filewatch"
	"cellbench/internal/testkit"
)

func TestHelloSnapshotAckIsRecordedInStatus(t *testing.T) {
	cp := startCP(t, cpOptions{})
	before := time.Now()
	startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "edge-a to ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })

	st := cp.status(t)
	if st.Version != "v1" || len(st.Nodes) != 1 {
		t.Fatalf("status = %+v", st)
	}
	n := st.Nodes[0]
	if n.Router != "go" || n.LastNack != nil || n.AckedAt == nil {
		t.Fatalf("node = %+v", n)
	}
	if n.ConnectedAt.Before(before) || n.AckedAt.Before(n.ConnectedAt) {
		t.Fatalf("connected_at %v / acked_at %v out of order (test started %v)", n.ConnectedAt, *n.AckedAt, before)
	}
}

func TestStatusHasTheContractFields(t *testing.T) {
	cp := startCP(t, cpOptions{})
	startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	resp, err := http.Get(cp.baseURL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct {
		Version json.RawMessage              `json:"version"`
		Nodes   []map[string]json.RawMessage `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Nodes[0] {
		keys = append(keys, k)
	}
	want := []string{"acked_at", "acked_version", "connected", "connected_at", "last_nack", "node_id", "router"}
	if !sameSet(keys, want) {
		t.Fatalf("node keys = %v, want %v", keys, want)
	}
	if string(raw.Nodes[0]["last_nack"]) != "null" {
		t.Fatalf("last_nack = %s, want null", raw.Nodes[0]["last_nack"])
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

func TestInvalidPutIsRefusedWithItsCodeAndNeverBroadcast(t *testing.T) {
	cp := startCP(t, cpOptions{})
	router := startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })

	bad := bytes.Replace(demoDoc(t, "v-bad"), []byte(`"dedicated"`), []byte(`"exclusive"`), 1)
	for _, tc := range []struct {
		name, code string
		doc        []byte
	}{
		{"semantic", config.CodeKindInvalid, bad},
		{"not json", config.CodeParseError, []byte(`{"version":`)},
		{"unknown field", config.CodeUnknownField, bytes.Replace(demoDoc(t, "v-typo"), []byte(`"routes"`), []byte(`"rutes"`), 1)},
		{"over 16 MiB", config.CodeParseError, bytes.Repeat([]byte(" "), config.MaxDocumentBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := cp.put(t, "", tc.doc)
			if resp.status != http.StatusBadRequest || resp.body["error"] != tc.code {
				t.Fatalf("PUT = %d %v, want 400 %s", resp.status, resp.body, tc.code)
			}
			if msg, _ := resp.body["message"].(string); msg == "" {
				t.Fatalf("PUT body has no message: %v", resp.body)
			}
		})
	}

	// The router must see v2 directly after v1: nothing was sent for the
	// refused documents.
	if resp := cp.put(t, "", demoDoc(t, "v2")); resp.status != http.StatusAccepted || resp.body["version"] != "v2" {
		t.Fatalf("valid PUT = %d %v", resp.status, resp.body)
	}
	testkit.WaitFor(t, 5*time.Second, "ack v2", func() bool { return cp.status(t).ackedBy("v2", "edge-a") })
	if got := router.appliedVersions(); !reflect.DeepEqual(got, []string{"v1", "v2"}) {
		t.Fatalf("router applied %v, want [v1 v2]", got)
	}
	// A PUT is written back to the file, so a restart serves it.
	onDisk, err := config.Parse(mustRead(t, cp.path))
	if err != nil || onDisk.Version != "v2" {
		t.Fatalf("config file after PUT: version %v, err %v", onDisk, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGetConfigServesTheCurrentDocument(t *testing.T) {
	cp := startCP(t, cpOptions{})
	doc := demoDoc(t, "v2")
	cp.put(t, "", doc)
	resp, err := http.Get(cp.baseURL + "/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(body, doc) || resp.Header.Get("X-Config-Version") != "v2" {
		t.Fatalf("GET /config = %q (X-Config-Version %q)", body, resp.Header.Get("X-Config-Version"))
	}
}

func TestNackIsRecordedInStatus(t *testing.T) {
	cp := startCP(t, cpOptions{})
	rejection := &config.Error{Code: config.CodeKindInvalid, Message: "this router refuses v2"}
	startRouter(t, cp, "edge-a", "", func(version string) error {
		if version == "v2" {
			return rejection
		}
		return nil
	})
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	cp.put(t, "", demoDoc(t, "v2"))
	testkit.WaitFor(t, 5*time.Second, "nack v2", func() bool {
		n, _ := cp.status(t).node("edge-a")
		return n.LastNack != nil
	})
	n, _ := cp.status(t).node("edge-a")
	if n.LastNack.Version != "v2" || n.LastNack.Error != rejection.Error() {
		t.Fatalf("last_nack = %+v, want v2 %q", *n.LastNack, rejection.Error())
	}
	if *n.AckedVersion != "v1" {
		t.Fatalf("acked_version = %s after a nack, want v1 (still serving)", *n.AckedVersion)
	}
}

func TestTokenIsRequiredForUpgradeAndPut(t *testing.T) {
	cp := startCP(t, cpOptions{token: "s3cret"})
	for _, token := range []string{"", "wrong", "s3cret-but-longer"} {
		if resp := cp.put(t, token, demoDoc(t, "v2")); resp.status != http.StatusUnauthorized || resp.body["error"] != "unauthorized" {
			t.Fatalf("PUT with token %q = %d %v, want 401", token, resp.status, resp.body)
		}
		header := http.Header{}
		if token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(cp.wsURL, header)
		if err == nil {
			conn.Close()
			t.Fatalf("upgrade with token %q succeeded", token)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("upgrade with token %q: %v (response %v), want 401", token, err, resp)
		}
	}
	if st := cp.status(t); st.Version != "v1" || len(st.Nodes) != 0 {
		t.Fatalf("status after refused requests = %+v", st)
	}

	startRouter(t, cp, "edge-a", "s3cret", nil)
	testkit.WaitFor(t, 5*time.Second, "ack with the right token", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	if resp := cp.put(t, "s3cret", demoDoc(t, "v2")); resp.status != http.StatusAccepted {
		t.Fatalf("PUT with the right token = %d %v", resp.status, resp.body)
	}
	testkit.WaitFor(t, 5*time.Second, "ack v2", func() bool { return cp.status(t).ackedBy("v2", "edge-a") })
}

func TestFileChangesAreBroadcast(t *testing.T) {
	cp := startCP(t, cpOptions{})
	router := startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })

	inPlace := func(doc []byte) error { return os.WriteFile(cp.path, doc, 0o644) }
	rename := func(doc []byte) error { return renameOver(cp.path, doc) }
	steps := []struct {
		name    string
		write   func(doc []byte) error
		doc     []byte
		applied string // version the router must end on
		refused bool
	}{
		{"in-place rewrite", inPlace, demoDoc(t, "v2"), "v2", false},
		{"atomic rename", rename, demoDoc(t, "v3"), "v3", false},
		{"invalid file", rename, []byte(`{"version":"v4"}`), "v3", true},
		{"valid again", inPlace, demoDoc(t, "v5"), "v5", false},
	}
	for _, step := range steps {
		if err := step.write(step.doc); err != nil {
			t.Fatal(err)
		}
		if step.refused {
			// Give the watcher time to have seen it (several polls), then
			// check that nothing moved.
			time.Sleep(5 * testTiming().pollInterval)
			if v := cp.status(t).Version; v != step.applied {
				t.Fatalf("%s: control plane serves %s", step.name, v)
			}
			continue
		}
		testkit.WaitFor(t, time.Second, step.name+" applied within 1 s", func() bool {
			return cp.status(t).ackedBy(step.applied, "edge-a")
		})
	}
	if got := router.appliedVersions(); !reflect.DeepEqual(got, []string{"v1", "v2", "v3", "v5"}) {
		t.Fatalf("router applied %v", got)
	}
}

func renameOver(path string, doc []byte) error {
	tmp := filepath.Join(filepath.Dir(path), ".next.json")
	if err := os.WriteFile(tmp, doc, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// rawRouter dials without the client package, to misbehave on purpose.
func rawRouter(t *testing.T, cp *testCP, dialer *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	conn, _, err := dialer.Dial(cp.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// readUntilClosed drains frames until the server closes the connection and
// returns the close error.
func readUntilClosed(t *testing.T, conn *websocket.Conn) error {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestHelloIsRequiredFirst(t *testing.T) {
	cp := startCP(t, cpOptions{})
	for _, tc := range []struct {
		name  string
		first any
	}{
		{"ack before hello", protocol.Ack("v1")},
		{"empty node_id", protocol.Hello("", "go", "v0")},
		{"node_id with a space", protocol.Hello("edge a", "go", "v0")},
		{"unknown router", protocol.Hello("edge-a", "nginx", "v0")},
		{"not JSON", "hello?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawRouter(t, cp, nil)
			var err error
			if s, ok := tc.first.(string); ok {
				err = conn.WriteMessage(websocket.TextMessage, []byte(s))
			} else {
				err = conn.WriteJSON(tc.first)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := readUntilClosed(t, conn); closeCode(err) != websocket.ClosePolicyViolation {
				t.Fatalf("got %v, want close 1008", err)
			}
		})
	}
	if n := len(cp.status(t).Nodes); n != 0 {
		t.Fatalf("%d nodes registered from refused hellos", n)
	}
}

func TestOversizeFrameFromRouterIsRefused(t *testing.T) {
	logs := &testkit.Buffer{}
	cp := startCP(t, cpOptions{logs: logs})
	conn := rawRouter(t, cp, nil)
	if err := conn.WriteJSON(protocol.Hello("edge-big", "go", "v0")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "edge-big connected", func() bool {
		n, ok := cp.status(t).node("edge-big")
		return ok && n.Connected
	})
	// Only the head of a 32 MiB frame is sent: the control plane must hang
	// up on the announced length alone (1009), without waiting for a payload.
	if _, err := conn.NetConn().Write(frameHeader(32<<20, true)); err != nil {
		t.Fatal(err)
	}
	if err := readUntilClosed(t, conn); closeCode(err) != websocket.CloseMessageTooBig {
		t.Fatalf("got %v, want close 1009", err)
	}
	testkit.WaitFor(t, 5*time.Second, "edge-big disconnected", func() bool {
		n, _ := cp.status(t).node("edge-big")
		return !n.Connected
	})
	testkit.WaitFor(t, 5*time.Second, "router_disconnected on the read limit", func() bool {
		return strings.Contains(logs.String(), websocket.ErrReadLimit.Error())
	})
}

func TestSilentRouterIsDropped(t *testing.T) {
	cp := startCP(t, cpOptions{})
	conn := rawRouter(t, cp, nil)
	if err := conn.WriteJSON(protocol.Hello("edge-mute", "go", "v0")); err != nil {
		t.Fatal(err)
	}
	// This router never reads, so it never answers a ping.
	testkit.WaitFor(t, 5*time.Second, "edge-mute connected", func() bool {
		n, ok := cp.status(t).node("edge-mute")
		return ok && n.Connected
	})
	silence := testTiming().silenceTimeout
	testkit.WaitFor(t, silence+2*time.Second, "edge-mute dropped after the silence timeout", func() bool {
		n, _ := cp.status(t).node("edge-mute")
		return !n.Connected
	})
}

func TestRouterThatAnswersPingsStaysConnected(t *testing.T) {
	cp := startCP(t, cpOptions{})
	startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	first, _ := cp.status(t).node("edge-a")
	time.Sleep(3 * testTiming().silenceTimeout)
	n, _ := cp.status(t).node("edge-a")
	if !n.Connected || !n.ConnectedAt.Equal(first.ConnectedAt) {
		t.Fatalf("a router that pongs was dropped: %+v (first connected at %v)", n, first.ConnectedAt)
	}
}

func TestSameNodeIDReplacesTheOldConnection(t *testing.T) {
	cp := startCP(t, cpOptions{})
	old := rawRouter(t, cp, nil)
	if err := old.WriteJSON(protocol.Hello("edge-a", "go", "v0")); err != nil {
		t.Fatal(err)
	}
	var snap protocol.Message
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := old.ReadJSON(&snap); err != nil || snap.Type != protocol.TypeConfigSnapshot {
		t.Fatalf("first frame = %+v, %v", snap, err)
	}
	startRouter(t, cp, "edge-a", "", nil)
	if err := readUntilClosed(t, old); closeCode(err) != websocket.ClosePolicyViolation {
		t.Fatalf("old connection: %v, want close 1008", err)
	}
	testkit.WaitFor(t, 5*time.Second, "new connection acked", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	if n := len(cp.status(t).Nodes); n != 1 {
		t.Fatalf("%d nodes for one node_id", n)
	}
}

// TestSlowRouterDoesNotBlockOthers: a router that stops reading while
// large snapshots are pushed must neither delay the others nor stay
// connected once its write times out.
func TestSlowRouterDoesNotBlockOthers(t *testing.T) {
	tm := testTiming()
	tm.writeTimeout = 4 * time.Second
	tm.silenceTimeout = time.Minute // only the write timeout may drop the slow router
	logs := &testkit.Buffer{}
	cp := startCP(t, cpOptions{timing: tm, sendBuffer: 16 << 10, logs: logs})

	// Tiny socket buffers on both ends so that the slow router's connection
	// fills up with the first snapshot.
	slowDialer := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	slow := rawRouter(t, cp, slowDialer)
	if err := slow.WriteJSON(protocol.Hello("edge-slow", "go", "v0")); err != nil {
		t.Fatal(err)
	}
	fast := nodeIDs("edge-fast", 3)
	for _, id := range fast {
		startRouter(t, cp, id, "", nil)
	}
	testkit.WaitFor(t, 5*time.Second, "fast routers ack v1", func() bool { return cp.status(t).ackedBy("v1", fast...) })

	// 128 KiB each: far more than the slow router's socket buffers hold.
	for _, v := range []string{"big-1", "big-2", "big-3", "big-4"} {
		pushed := time.Now()
		if resp := cp.put(t, "", docWithPadding(t, v, 128<<10)); resp.status != http.StatusAccepted {
			t.Fatalf("PUT %s = %d %v", v, resp.status, resp.body)
		}
		// Well inside the write timeout: a broadcast that waited on the
		// slow router could not meet this.
		testkit.WaitFor(t, tm.writeTimeout/2, "fast routers ack "+v, func() bool { return cp.status(t).ackedBy(v, fast...) })
		t.Logf("%s: fast routers acked in %v", v, time.Since(pushed).Round(time.Millisecond))
	}
	n, _ := cp.status(t).node("edge-slow")
	if !n.Connected || n.AckedVersion != nil {
		t.Fatalf("slow router = %+v, want still connected (its write is blocked) and nothing acked", n)
	}
	testkit.WaitFor(t, tm.writeTimeout+2*time.Second, "slow router disconnected after its write timed out", func() bool {
		n, _ := cp.status(t).node("edge-slow")
		return !n.Connected
	})
	testkit.WaitFor(t, time.Second, "the disconnect logged as a failed snapshot write", func() bool {
		return strings.Contains(logs.String(), `"node_id":"edge-slow","reason":"snapshot write failed`)
	})
	// The fast routers are still there and still converge.
	cp.put(t, "", demoDoc(t, "after"))
	testkit.WaitFor(t, 2*time.Second, "fast routers ack after", func() bool { return cp.status(t).ackedBy("after", fast...) })
}

func TestSessionQueueKeepsOnlyTheNewestSnapshot(t *testing.T) {
	s := newSession(nil, "edge-a", "go", nil)
	docs := []*document{{version: "v1"}, {version: "v2"}, {version: "v3"}}
	for _, d := range docs {
		s.offer(d)
	}
	if got := s.take(); got != docs[2] {
		t.Fatalf("take = %v, want v3", got.version)
	}
	if got := s.take(); got != nil {
		t.Fatalf("second take = %v, want nothing", got.version)
	}
	if len(s.wake) != 1 {
		t.Fatalf("%d wake-ups pending, want 1 (offer must never block)", len(s.wake))
	}
}

func TestShutdownClosesRoutersWithGoingAway(t *testing.T) {
	cp := startCP(t, cpOptions{})
	conn := rawRouter(t, cp, nil)
	if err := conn.WriteJSON(protocol.Hello("edge-a", "go", "v0")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "edge-a connected", func() bool {
		n, ok := cp.status(t).node("edge-a")
		return ok && n.Connected
	})
	go cp.srv.hub.closeAll(websocket.CloseGoingAway, "control plane shutting down")
	if err := readUntilClosed(t, conn); closeCode(err) != websocket.CloseGoingAway {
		t.Fatalf("got %v, want close 1001", err)
	}
}

func TestPutThatCannotBeSavedIsNotBroadcast(t *testing.T) {
	cp := startCP(t, cpOptions{})
	router := startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	// Without its directory the file cannot be replaced.
	if err := os.RemoveAll(filepath.Dir(cp.path)); err != nil {
		t.Fatal(err)
	}
	if resp := cp.put(t, "", demoDoc(t, "v2")); resp.status != http.StatusInternalServerError || resp.body["error"] != "persist_failed" {
		t.Fatalf("PUT = %d %v, want 500 persist_failed", resp.status, resp.body)
	}
	if v := cp.status(t).Version; v != "v1" {
		t.Fatalf("control plane serves %s after a failed save", v)
	}
	if got := router.appliedVersions(); !reflect.DeepEqual(got, []string{"v1"}) {
		t.Fatalf("router applied %v", got)
	}
}

// Back-to-back PUTs race the watcher, which sees each PUT's own write to
// the file: the fleet must only ever move forward.
func TestRapidPutsNeverRollBack(t *testing.T) {
	cp := startCP(t, cpOptions{})
	router := startRouter(t, cp, "edge-a", "", nil)
	testkit.WaitFor(t, 5*time.Second, "ack v1", func() bool { return cp.status(t).ackedBy("v1", "edge-a") })
	const last = 40
	for i := 2; i <= last; i++ {
		if resp := cp.put(t, "", demoDoc(t, fmt.Sprintf("v%d", i))); resp.status != http.StatusAccepted {
			t.Fatalf("PUT v%d = %d", i, resp.status)
		}
		if i%8 == 0 {
			time.Sleep(filewatch.Settle) // let the watcher's reloads interleave with later PUTs
		}
	}
	final := fmt.Sprintf("v%d", last)
	testkit.WaitFor(t, 5*time.Second, "ack "+final, func() bool { return cp.status(t).ackedBy(final, "edge-a") })
	time.Sleep(3 * testTiming().pollInterval) // any late reload would show up now
	previous := 0
	for _, v := range router.appliedVersions() {
		var n int
		if _, err := fmt.Sscanf(v, "v%d", &n); err != nil || n <= previous {
			t.Fatalf("router applied %v: not strictly increasing", router.appliedVersions())
		}
		previous = n
	}
	if v := cp.status(t).Version; v != final {
		t.Fatalf("control plane serves %s, want %s", v, final)
	}
}

// A nack may quote a large part of the document it rejects: it must not
// cost the router its connection, and /status keeps only its start.
func TestLargeNackIsKeptShort(t *testing.T) {
	cp := startCP(t, cpOptions{})
	conn := rawRouter(t, cp, nil)
	if err := conn.WriteJSON(protocol.Hello("edge-a", "pingora", "v0")); err != nil {
		t.Fatal(err)
	}
	var snap protocol.Message
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.ReadJSON(&snap); err != nil {
		t.Fatal(err)
	}
	long := "health_check_invalid: path \"/" + strings.Repeat("p", 1<<20) + "\" is not allowed"
	if err := conn.WriteJSON(protocol.Nack(snap.Version, long)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "nack recorded", func() bool {
		n, _ := cp.status(t).node("edge-a")
		return n.LastNack != nil
	})
	n, _ := cp.status(t).node("edge-a")
	if !n.Connected || n.Router != "pingora" {
		t.Fatalf("node = %+v", n)
	}
	if got := n.LastNack.Error; len(got) != maxNackErrorBytes || !strings.HasPrefix(long, got) {
		t.Fatalf("last_nack.error is %d bytes, want the first %d", len(got), maxNackErrorBytes)
	}
}

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: never cut in half
		{"日本", 4, "日"},
		{"", 0, ""},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// frameHeader is the head of one final text frame announcing length bytes
// (RFC 6455 section 5.2), masked as a client's must be.
func frameHeader(length uint64, masked bool) []byte {
	head := []byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(head[2:], length)
	if masked {
		head[1] |= 0x80
		head = append(head, 1, 2, 3, 4) // masking key
	}
	return head
}
