package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
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
	copyEndToEnd(dst, src)
	if len(dst) != 2 || len(dst["X-Kept"]) != 2 || dst.Get("Content-Type") != "text/plain" {
		t.Fatalf("copied %v", dst)
	}
	if !asksForTrailers([]string{"deflate, Trailers"}) || asksForTrailers([]string{"deflate"}) {
		t.Error("asksForTrailers")
	}
}

func TestAccessLogTimestamp(t *testing.T) {
	l := &AccessLog{}
	for _, ts := range []time.Time{
		time.Date(2026, 11, 26, 2, 29, 9, 598_765_432, time.UTC),
		time.Date(2026, 11, 26, 2, 29, 9, 5_000_000, time.UTC), // same second, cached prefix
		time.Date(2026, 11, 26, 2, 29, 10, 0, time.UTC),
	} {
		got := string(l.appendTimestamp(nil, ts))
		if want := ts.Format("2006-01-02T15:04:05.000Z07:00"); got != want {
			t.Errorf("appendTimestamp = %q, want %q", got, want)
		}
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
