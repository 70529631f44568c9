package proxy

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"cellbench/go-router/snapshot"
)

func TestAdminDebugConfigAfterRejection(t *testing.T) {
	ok := upstreamFunc(t, func(http.ResponseWriter, *http.Request) {})
	rt, _ := newTestRouter(t, oneUpstreamDoc("v1", ok, ""))
	if err := rt.Store().Apply([]byte(`{"version": "bad-1"}`), snapshot.SourceFile); err == nil {
		t.Fatal("invalid document applied")
	}
	rec := httptest.NewRecorder()
	rt.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/config", nil))
	var dc struct {
		Version      string
		Source       string
		LastRejected *struct{ Version, Error string } `json:"last_rejected"`
		Config       map[string]any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &dc); err != nil {
		t.Fatal(err)
	}
	if dc.Version != "v1" || dc.Source != "file" || dc.LastRejected == nil || dc.LastRejected.Version != "bad-1" || dc.Config["version"] != "v1" {
		t.Fatalf("/debug/config after rejection: %s", rec.Body)
	}
}

func TestLoggedPathIsAsSent(t *testing.T) {
	for target, want := range map[string]string{
		"/p%2Fq/%7Euser?x=1":         "/p%2Fq/%7Euser",
		"/plain":                     "/plain",
		"http://h.example/a%2Fb?q=1": "/a%2Fb",
	} {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		if got := loggedPath(req); got != want {
			t.Errorf("loggedPath(%q) = %q, want %q", target, got, want)
		}
	}
}
