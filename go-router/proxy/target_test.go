package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestValidTarget(t *testing.T) {
	for line, want := range map[string]bool{
		"GET /front HTTP/1.1":          true,
		"GET http://x/front HTTP/1.1":  true,
		"GET HTTPS://x/front HTTP/1.1": true, // the scheme is case-insensitive
		"OPTIONS * HTTP/1.1":           true,
		"GET * HTTP/1.1":               false,
		"GET x:80 HTTP/1.1":            false, // authority-form is CONNECT's
		"GET ftp://x/front HTTP/1.1":   false,
		"GET http:/front HTTP/1.1":     false, // no host
		"GET /fr\xc3\xa9 HTTP/1.1":     false, // not URI characters
		"GET /front#frag HTTP/1.1":     true,  // the fragment is dropped later
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(line + "\r\nHost: x\r\n\r\n")))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got := validTarget(r); got != want {
			t.Errorf("validTarget(%q) = %v, want %v", line, got, want)
		}
	}
}
