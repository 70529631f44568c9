package proxy

import (
	"net/http"
	"testing"
)

// panicWriter panics on the first call of the method named by at.
type panicWriter struct {
	recorder
	at    string
	fired bool
}

func (p *panicWriter) trip(method string) {
	if p.at == method && !p.fired {
		p.fired = true
		panic("boom in " + method)
	}
}

func (p *panicWriter) Header() http.Header         { p.trip("Header"); return p.recorder.Header() }
func (p *panicWriter) Write(b []byte) (int, error) { p.trip("Write"); return p.recorder.Write(b) }

func TestHandlerPanics(t *testing.T) {
	endpoint := upstreamFunc(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("body")) })
	rt, events := newTestRouter(t, oneUpstreamDoc("v1", endpoint, ""))
	req, _ := http.NewRequest("GET", "http://h/", nil)
	req.Header.Set("X-Routing-Key", "k")

	// Before the response has started: answered 500 internal_error.
	w := &panicWriter{recorder: recorder{header: http.Header{}}, at: "Header"}
	rt.ServeHTTP(w, req)
	if w.status != http.StatusInternalServerError || w.header.Get("Content-Type") != "application/json" {
		t.Fatalf("panic before the head: status %d headers %v", w.status, w.header)
	}
	if !events.has("handler_panic", nil) {
		t.Error("no handler_panic event")
	}

	// Mid-body: the connection is aborted the way net/http expects.
	w = &panicWriter{recorder: recorder{header: http.Header{}}, at: "Write"}
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("panic mid-body surfaced as %v, want http.ErrAbortHandler", v)
			}
		}()
		rt.ServeHTTP(w, req)
	}()
}
