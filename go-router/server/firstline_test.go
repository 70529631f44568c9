package server

import "testing"

func TestForeignFirstLine(t *testing.T) {
	for in, want := range map[string]bool{
		"":                                 false, // nothing yet
		"GET / HT":                         false, // the first line still arriving
		"GET / HTTP/1.1\r\nHost: x\r\n":    false, // the fast path may take it
		"GET /front\r\n":                   true,  // HTTP/0.9
		"GET / HTTP/1.0\r\nHost: x\r\n":    true,
		"\r\nGET / HTTP/1.1\r\n":           true, // a stray empty line
		"GET / HTTP/1.1\nHost: x\n":        true, // bare LF
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": true,
	} {
		if got := foreignFirstLine([]byte(in)); got != want {
			t.Errorf("foreignFirstLine(%q) = %v, want %v", in, got, want)
		}
	}
}
