package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cellbench/mockbackends/cell"
)

func startAdmin(t *testing.T, names ...string) (string, map[string]*cell.Cell) {
	t.Helper()
	cells := make(map[string]*cell.Cell)
	var list []*cell.Cell
	for _, name := range names {
		c, err := cell.New(name, "127.0.0.1:0", cell.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c.Shutdown(ctx)
		})
		cells[name] = c
		list = append(list, c)
	}
	srv := httptest.NewServer(Handler(list))
	t.Cleanup(srv.Close)
	return srv.URL, cells
}

func call(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 405 && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, out
}

func TestHealthz(t *testing.T) {
	base, _ := startAdmin(t, "a")
	if code, body := call(t, "GET", base+"/healthz", ""); code != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("healthz: %d %s", code, body)
	}
}

func TestChaosLifecycle(t *testing.T) {
	base, cells := startAdmin(t, "tier1", "tier2")
	tier1 := "http://" + cells["tier1"].Addr()

	code, body := call(t, "POST", base+"/cells/tier1/chaos", `{"status":503,"delay_ms":5}`)
	var state cell.State
	if err := json.Unmarshal(body, &state); err != nil || code != 200 || state.Chaos.Status != 503 || state.Chaos.DelayMs != 5 || !state.Up {
		t.Fatalf("POST chaos: %d %s", code, body)
	}
	// Fields not given keep their value.
	call(t, "POST", base+"/cells/tier1/chaos", `{"health":"fail"}`)
	resp, err := http.Get(tier1 + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("request under status chaos: %d", resp.StatusCode)
	}
	resp, err = http.Get(tier1 + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("health under health chaos: %d", resp.StatusCode)
	}

	code, body = call(t, "POST", base+"/cells/tier1/chaos", `{"down":true}`)
	if code != 200 || !strings.Contains(string(body), `"up":false`) {
		t.Fatalf("down: %d %s", code, body)
	}
	if conn, err := net.DialTimeout("tcp", cells["tier1"].Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("connect succeeded while down")
	}

	var all CellsResponse
	code, body = call(t, "GET", base+"/cells", "")
	if err := json.Unmarshal(body, &all); err != nil || code != 200 || len(all.Cells) != 2 {
		t.Fatalf("GET /cells: %d %s", code, body)
	}
	t1 := all.Cells["tier1"]
	want := cell.ChaosState{Chaos: cell.Chaos{Health: "fail", Status: 503, DelayMs: 5}, Down: true}
	if t1.Up || t1.Chaos != want || t1.Address != cells["tier1"].Addr() ||
		t1.Requests != 1 || t1.HealthProbes != 1 || t1.HealthFailed != 1 || t1.ByStatus["503"] != 1 {
		t.Fatalf("tier1 state = %+v", t1)
	}
	if t2 := all.Cells["tier2"]; !t2.Up || t2.Chaos != (cell.ChaosState{Chaos: cell.NormalChaos}) || t2.Requests != 0 {
		t.Fatalf("tier2 state = %+v", t2)
	}

	// DELETE resets everything and brings the cell up on the same address.
	code, body = call(t, "DELETE", base+"/cells/tier1/chaos", "")
	if code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	resp, err = http.Get(tier1 + "/")
	if err != nil {
		t.Fatalf("after reset: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Cell") != "tier1" {
		t.Fatalf("after reset: %d", resp.StatusCode)
	}
	var one cell.State
	_, body = call(t, "GET", base+"/cells/tier1", "")
	if err := json.Unmarshal(body, &one); err != nil || !one.Up || one.Chaos != (cell.ChaosState{Chaos: cell.NormalChaos}) || one.Requests != 2 {
		t.Fatalf("GET /cells/tier1 after reset: %s", body)
	}
}

func TestChaosValidation(t *testing.T) {
	base, cells := startAdmin(t, "a")
	cases := []struct {
		method, path, body string
		code               int
		errCode            string
	}{
		{"POST", "/cells/nope/chaos", `{"status":500}`, 404, CodeUnknownCell},
		{"DELETE", "/cells/nope/chaos", ``, 404, CodeUnknownCell},
		{"GET", "/cells/nope", ``, 404, CodeUnknownCell},
		{"POST", "/cells/a/chaos", `{"stauts":500}`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `{"status":"500"}`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `{"error_rate":2}`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `{"health":"fail","delay_ms":-1}`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `{"down":true,"status":42}`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `not json`, 400, CodeBadChaos},
		{"POST", "/cells/a/chaos", `{"delay_ms":1` + strings.Repeat(" ", cell.MaxChaosBodyBytes) + `}`, 413, CodeBadChaos},
	}
	for _, tc := range cases {
		code, body := call(t, tc.method, base+tc.path, tc.body)
		var e struct{ Error, Message string }
		if err := json.Unmarshal(body, &e); err != nil || code != tc.code || e.Error != tc.errCode || e.Message == "" {
			t.Errorf("%s %s %.40q: %d %s, want %d %s", tc.method, tc.path, tc.body, code, body, tc.code, tc.errCode)
		}
	}
	// Nothing of a rejected patch was applied.
	if s := cells["a"].State(); !s.Up || s.Chaos != (cell.ChaosState{Chaos: cell.NormalChaos}) {
		t.Fatalf("state after rejected patches: %+v", s)
	}
	if code, _ := call(t, "PUT", base+"/cells/a/chaos", `{}`); code != 405 {
		t.Fatalf("PUT chaos: %d, want 405", code)
	}
}
