package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"cellbench/go-router/snapshot"
	"cellbench/internal/testkit"
)

// eventSink collects event-log lines for assertions.
type eventSink struct{ testkit.Buffer }

// has reports whether an event with msg and all the given fields was logged.
func (e *eventSink) has(msg string, fields map[string]string) bool {
	return testkit.HasEvent(e.String(), msg, fields)
}

func newTestRouter(t testing.TB, doc string) (*Router, *eventSink) {
	t.Helper()
	sink := &eventSink{}
	rt := New(Options{Events: slog.New(slog.NewJSONHandler(sink, nil))})
	t.Cleanup(rt.Close)
	if err := rt.Store().Apply([]byte(doc), snapshot.SourceFile); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return rt, sink
}

// serve runs one request through the router's handler.
func serve(rt *Router, method, target, key string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	if key != "" {
		req.Header.Set("X-Routing-Key", key)
	}
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	return rec
}

// upstreamFunc starts a loopback upstream and returns its endpoint.
func upstreamFunc(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error, Message, RequestID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return body.Error
}
