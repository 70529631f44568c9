// Package e2e runs the control plane, the Go router and the mock cells as
// real processes on loopback and checks the protocol end to end.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"cellbench/controlplane/protocol"
	"cellbench/internal/testkit"
)

// stack is mock cells + a control plane + one router connected to it.
type stack struct {
	cellA, cellB string
	cp           *controlPlane
	router       *router
}

const nodeID = "e2e-router"

// forEachRouter runs test once per router kind, as subtests.
func forEachRouter(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range routerKinds {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

func startStack(t *testing.T, kind, token string) *stack {
	t.Helper()
	s := &stack{}
	s.cellA, s.cellB = startCells(t)
	dir := t.TempDir()
	cpPath := writeFile(t, dir, "controlplane.json", routerConfig("v1", s.cellA, s.cellB))
	boot := writeFile(t, dir, "bootstrap.json", routerConfig("boot", s.cellA, s.cellB))
	s.cp = startControlPlane(t, "127.0.0.1:0", cpPath, token)
	s.router = startRouter(t, kind, boot, s.cp.wsURL(), token, nodeID)
	testkit.WaitFor(t, 10*time.Second, "router to ack v1", func() bool { return s.cp.acked(t, nodeID, "v1") })
	return s
}

func TestPushIsAckedAndServedByTheNextRequest(t *testing.T) {
	forEachRouter(t, testPushIsAckedAndServed)
}

func testPushIsAckedAndServed(t *testing.T, kind string) {
	s := startStack(t, kind, "e2e-token")
	if v := s.router.configVersion(t); v != "v1" {
		t.Fatalf("router serves %q, want v1", v)
	}
	var latencies []time.Duration
	for i := range 10 {
		version := fmt.Sprintf("v%d", i+2)
		pushed := time.Now()
		if code := s.cp.put(t, routerConfig(version, s.cellA, s.cellB)); code != http.StatusAccepted {
			t.Fatalf("PUT %s: %d", version, code)
		}
		testkit.WaitFor(t, 5*time.Second, "ack "+version, func() bool { return s.cp.acked(t, nodeID, version) })
		n, _ := s.cp.node(t, nodeID)
		latencies = append(latencies, n.AckedAt.Sub(pushed))
		// The router acks after the swap, so the very next request sees it.
		if v := s.router.configVersion(t); v != version {
			t.Fatalf("request after the ack of %s carried X-Config-Version %q", version, v)
		}
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p50, worst := latencies[len(latencies)/2], latencies[len(latencies)-1]
	t.Logf("push-to-ack over loopback, real processes, %s router, %d pushes: p50 %v, max %v",
		kind, len(latencies), p50.Round(time.Microsecond), worst.Round(time.Microsecond))
	// The brief's bound is 100 ms on loopback. It is checked on the median
	// so that one scheduling hiccup on a shared 2-core machine does not
	// fail the run, while a systematically slow path does.
	if p50 > 100*time.Millisecond || worst > time.Second {
		t.Fatalf("push-to-ack p50 %v (want <= 100ms), max %v (want <= 1s)", p50, worst)
	}
}

// The real control plane never broadcasts an invalid document, so a
// router's nack is provoked by a stand-in control plane on the same
// protocol that pushes one anyway.
func TestRouterNacksAnInvalidSnapshotAndKeepsServing(t *testing.T) {
	forEachRouter(t, testRouterNacks)
}

func testRouterNacks(t *testing.T, kind string) {
	cellA, cellB := startCells(t)
	conns := make(chan *websocket.Conn, 1)
	fakeCP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			conns <- conn
		}
	}))
	defer fakeCP.Close()
	boot := writeFile(t, t.TempDir(), "bootstrap.json", routerConfig("boot", cellA, cellB))
	router := startRouter(t, kind, boot, "ws"+strings.TrimPrefix(fakeCP.URL, "http")+"/connect", "", nodeID)

	var conn *websocket.Conn
	select {
	case conn = <-conns:
		defer conn.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("router did not connect")
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello protocol.Message
	if err := conn.ReadJSON(&hello); err != nil {
		t.Fatal(err)
	}
	if hello.Type != protocol.TypeHello || hello.NodeID != nodeID || hello.Router != kind || hello.ConfigVersion != "boot" {
		t.Fatalf("hello = %+v", hello)
	}

	exchange := func(version string, doc []byte) protocol.Message {
		t.Helper()
		if err := conn.WriteJSON(protocol.ConfigSnapshot(version, json.RawMessage(doc))); err != nil {
			t.Fatal(err)
		}
		var reply protocol.Message
		if err := conn.ReadJSON(&reply); err != nil {
			t.Fatal(err)
		}
		return reply
	}
	if reply := exchange("v1", routerConfig("v1", cellA, cellB)); reply.Type != protocol.TypeAck || reply.Version != "v1" {
		t.Fatalf("reply to v1 = %+v, want ack", reply)
	}
	invalid := bytes.Replace(routerConfig("v2", cellA, cellB), []byte(`"dedicated"`), []byte(`"exclusive"`), 1)
	reply := exchange("v2", invalid)
	if reply.Type != protocol.TypeNack || reply.Version != "v2" || !strings.HasPrefix(reply.Error, "kind_invalid: ") {
		t.Fatalf("reply to an invalid v2 = %+v, want nack with kind_invalid", reply)
	}
	if v := router.configVersion(t); v != "v1" {
		t.Fatalf("after the nack the router serves %q, want v1", v)
	}
}

// TestControlPlaneOutageUnderLoad kills the control plane in the middle of
// a steady load through the router and brings it back on the same port:
// no request may fail, and the router must reconnect and converge.
func TestControlPlaneOutageUnderLoad(t *testing.T) {
	forEachRouter(t, testControlPlaneOutageUnderLoad)
}

func testControlPlaneOutageUnderLoad(t *testing.T, kind string) {
	s := startStack(t, kind, "")
	if line := s.router.metric(t, "cellbench_control_plane_connected"); !strings.HasSuffix(line, " 1") {
		t.Fatalf("connected gauge = %q", line)
	}

	const rate, duration = 200, 5 * time.Second
	target := vegeta.Target{Method: http.MethodGet, URL: "http://" + s.router.listen + "/load",
		Header: http.Header{"X-Routing-Key": []string{"acme"}}}
	attacker := vegeta.NewAttacker(vegeta.Timeout(5 * time.Second))
	results := attacker.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: rate, Per: time.Second}, duration, "cp-outage")

	// The outage, on its own clock beside the load.
	outage := make(chan *controlPlane, 1)
	go func() {
		time.Sleep(time.Second)
		s.cp.Kill() // SIGKILL: no close frame, the router must notice by itself
		time.Sleep(1500 * time.Millisecond)
		outage <- nil
	}()

	var metrics vegeta.Metrics
	failures := map[string]int{}
	versions := map[string]int{}
	restarted := false
	for res := range results {
		metrics.Add(res)
		if res.Code != http.StatusOK || res.Error != "" {
			failures[fmt.Sprintf("%d %s", res.Code, res.Error)]++
		}
		versions[res.Headers.Get("X-Config-Version")]++
		if !restarted {
			select {
			case <-outage:
				restarted = true
				s.cp = startControlPlane(t, s.cp.addr, s.cp.path, "")
			default:
			}
		}
	}
	metrics.Close()
	t.Logf("%s router, load across a control-plane kill and restart: %d requests, success %.4f, p50 %v, p99 %v, max %v; versions served %v",
		kind, metrics.Requests, metrics.Success, metrics.Latencies.P50, metrics.Latencies.P99, metrics.Latencies.Max, versions)
	if len(failures) > 0 {
		t.Fatalf("failed requests during the control-plane outage: %v", failures)
	}
	if metrics.Requests < rate*uint64(duration/time.Second)*9/10 {
		t.Fatalf("only %d requests were sent", metrics.Requests)
	}
	if !restarted {
		t.Fatal("the control plane was never restarted during the load")
	}

	// Back on the same port: the router reconnects (its backoff is at most
	// 10 s) and converges on a push made after the restart.
	testkit.WaitFor(t, 15*time.Second, "router to reconnect", func() bool {
		n, ok := s.cp.node(t, nodeID)
		return ok && n.Connected
	})
	if code := s.cp.put(t, routerConfig("after-outage", s.cellA, s.cellB)); code != http.StatusAccepted {
		t.Fatalf("PUT after the restart: %d", code)
	}
	testkit.WaitFor(t, 5*time.Second, "ack after-outage", func() bool { return s.cp.acked(t, nodeID, "after-outage") })
	if v := s.router.configVersion(t); v != "after-outage" {
		t.Fatalf("router serves %q after converging", v)
	}
	if line := s.router.metric(t, "cellbench_control_plane_connected"); !strings.HasSuffix(line, " 1") {
		t.Fatalf("connected gauge after reconnect = %q", line)
	}
}

func TestWrongTokenIsRefusedAndTheRouterKeepsItsBootstrap(t *testing.T) {
	forEachRouter(t, testWrongToken)
}

func testWrongToken(t *testing.T, kind string) {
	cellA, cellB := startCells(t)
	dir := t.TempDir()
	cp := startControlPlane(t, "127.0.0.1:0", writeFile(t, dir, "cp.json", routerConfig("v1", cellA, cellB)), "right")
	boot := writeFile(t, dir, "bootstrap.json", routerConfig("boot", cellA, cellB))
	router := startRouter(t, kind, boot, cp.wsURL(), "wrong", nodeID)
	// Give the router a few reconnect attempts (200 ms, 400 ms, ...).
	time.Sleep(1500 * time.Millisecond)
	if n, ok := cp.node(t, nodeID); ok {
		t.Fatalf("a router with the wrong token is in /status: %+v", n)
	}
	if v := router.configVersion(t); v != "boot" {
		t.Fatalf("router serves %q, want its bootstrap", v)
	}
	if line := router.metric(t, "cellbench_control_plane_connected"); !strings.HasSuffix(line, " 0") {
		t.Fatalf("connected gauge = %q, want 0", line)
	}
}

func TestControlPlaneProcessLifecycle(t *testing.T) {
	dir := t.TempDir()
	t.Run("invalid config exits 2 with its code", func(t *testing.T) {
		path := writeFile(t, dir, "bad.json", []byte(`{"version":"x","default_placement":"a","placements":{}}`))
		p := startProc(t, "controlplane", nil, "--config", path, "--listen", testkit.FreeAddr(t))
		if code := p.exitCode(t); code != 2 {
			t.Fatalf("exit status %d, want 2", code)
		}
		if !strings.Contains(p.stderr.String(), `"code":"no_placements"`) {
			t.Fatalf("stderr does not name the code:\n%s", p.stderr.String())
		}
	})
	t.Run("missing config exits 2", func(t *testing.T) {
		p := startProc(t, "controlplane", nil, "--config", dir+"/absent.json", "--listen", testkit.FreeAddr(t))
		if code := p.exitCode(t); code != 2 {
			t.Fatalf("exit status %d, want 2", code)
		}
	})
	t.Run("SIGHUP re-reads the file and does not stop it", func(t *testing.T) {
		s := startStack(t, "go", "")
		s.cp.Signal(syscall.SIGHUP)
		testkit.WaitFor(t, 5*time.Second, "sighup event", func() bool { return strings.Contains(s.cp.stderr.String(), `"msg":"sighup"`) })
		if !httpOK("http://"+s.cp.addr+"/healthz") || !s.cp.acked(t, nodeID, "v1") {
			t.Fatal("control plane stopped serving after SIGHUP")
		}
	})
	t.Run("SIGTERM closes router connections and exits 0", func(t *testing.T) {
		s := startStack(t, "go", "")
		if code := s.cp.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit status %d, want 0", code)
		}
		if !strings.Contains(s.cp.stderr.String(), `"msg":"shutdown"`) {
			t.Fatalf("no shutdown event:\n%s", s.cp.stderr.String())
		}
		testkit.WaitFor(t, 5*time.Second, "router to notice", func() bool {
			return strings.HasSuffix(s.router.metric(t, "cellbench_control_plane_connected"), " 0")
		})
		if v := s.router.configVersion(t); v != "v1" {
			t.Fatalf("router serves %q without its control plane, want v1", v)
		}
	})
}
