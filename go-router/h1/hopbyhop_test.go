package h1

import (
	"net/http"
	"testing"
)

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
	CopyEndToEnd(dst, src)
	if len(dst) != 2 || len(dst["X-Kept"]) != 2 || dst.Get("Content-Type") != "text/plain" {
		t.Fatalf("copied %v", dst)
	}
	if !AsksForTrailers([]string{"deflate, Trailers"}) || AsksForTrailers([]string{"deflate"}) {
		t.Error("AsksForTrailers")
	}
}
