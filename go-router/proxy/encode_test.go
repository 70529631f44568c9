package proxy

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestAppendJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\n\r\t\x7f", "ünïcode ✓", "bad\xffutf8"} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\ufffdutf8"
		}
		if back != want {
			t.Errorf("%q round-tripped to %q", s, back)
		}
	}
}

func TestCopyEndToEnd(t *testing.T) {
	src := http.Header{
		"Connection":        {"keep-alive, X-Private", "x-other"},
		"X-Private":         {"1"},
		"X-Other":           {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Proxy-Connection":  {"keep-alive"},
		"Te":                {"trailers"},
		"Trailer":           {"X-T"},
		"Upgrade":           {"h2c"},
		"X-Kept":            {"a", "b"},
		"Content-Type":      {"text/plain"},
	}
	dst := http.Header{}
	copyEndToEnd(dst, src)
	if len(dst) != 2 || len(dst["X-Kept"]) != 2 || dst.Get("Content-Type") != "text/plain" {
		t.Fatalf("copied %v", dst)
	}
	if !asksForTrailers([]string{"deflate, Trailers"}) || asksForTrailers([]string{"deflate"}) {
		t.Error("asksForTrailers")
	}
}
