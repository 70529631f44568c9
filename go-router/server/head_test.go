package server

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// readRequestAsServer is what net/http.Server makes of a head: the request
// from http.ReadRequest, or nil when it (or the server's own checks on Host
// and field values, which parseHead also applies) refuses it.
func readRequestAsServer(head []byte) *http.Request {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil
	}
	return req
}

// sameRequest compares the fields a handler can see.
func sameRequest(t *testing.T, head []byte, got, want *http.Request) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Method", got.Method, want.Method},
		{"RequestURI", got.RequestURI, want.RequestURI},
		{"URL", got.URL, want.URL},
		{"Proto", got.Proto, want.Proto},
		{"ProtoMajor", got.ProtoMajor, want.ProtoMajor},
		{"ProtoMinor", got.ProtoMinor, want.ProtoMinor},
		{"Header", got.Header, want.Header},
		{"Host", got.Host, want.Host},
		{"Close", got.Close, want.Close},
		{"ContentLength", got.ContentLength, want.ContentLength},
		{"Body", got.Body, want.Body},
		{"TransferEncoding", got.TransferEncoding, want.TransferEncoding},
		{"Trailer", got.Trailer, want.Trailer},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%q: %s = %#v, http.ReadRequest gives %#v", head, f.name, f.got, f.want)
		}
	}
}

var parseHeadCases = []struct {
	name string
	head string
	fast bool // parseHead takes it; otherwise it hands it to net/http
}{
	{"Go client", "GET /bench HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nX-Routing-Key: acme\r\nAccept-Encoding: gzip\r\n\r\n", true},
	{"curl", "GET /hello?x=1&y=%2F HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Routing-Key: acme\r\n\r\n", true},
	{"browser-like", "GET /a/b/c.html HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nAccept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nCookie: a=1; b=2\r\nIf-None-Match: \"abc\"\r\nSec-Fetch-Mode: navigate\r\n\r\n", true},
	{"lower-case names, repeated field, OWS", "DELETE /x HTTP/1.1\r\nhost: h\r\nx-a:  1 \r\nX-A:\t2\r\nx-routing-key:k\r\nX-Empty:\r\n\r\n", true},
	{"Connection: close", "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n", true},
	{"Pragma no-cache", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", true},
	{"Pragma with Cache-Control", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n", true},
	{"IPv6 host, custom method", "PURGE /p HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", true},
	{"digits and odd words in names", "GET / HTTP/1.1\r\nHost: h\r\nX-1abc: v\r\nwww-authenticate-x: v\r\nX--Y: v\r\n\r\n", true},
	{"obs-text value", "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n", true},

	{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", false},
	{"no Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", false},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
	{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", false},
	{"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", false},
	{"Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", false},
	{"Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", false},
	{"Expect", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", false},
	{"Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false},
	{"Trailer", "GET / HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n", false},
	{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"absolute form", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"bare LF", "GET / HTTP/1.1\nHost: h\n\n", false},
	{"bare LF inside", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\nX-B: 2\r\n\r\n", false},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", false},
	{"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", false},
	{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", false},
	{"control in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", false},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", false},
	{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"two spaces in request line", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", false},
	{"cut head", "GET / HTTP/1.1\r\nHost: h\r\n", false},
}

func TestParseHeadMatchesReadRequest(t *testing.T) {
	for _, tc := range parseHeadCases {
		t.Run(tc.name, func(t *testing.T) {
			head := []byte(tc.head)
			got := parseHead(head)
			if (got != nil) != tc.fast {
				t.Fatalf("parseHead took it: %v, want %v", got != nil, tc.fast)
			}
			if got == nil {
				return
			}
			want := readRequestAsServer(head)
			if want == nil {
				t.Fatalf("parseHead takes a head http.ReadRequest refuses")
			}
			sameRequest(t, head, got, want)
		})
	}
}

// FuzzParseHead: whatever parseHead takes, http.ReadRequest reads the
// same way. (parseHead may refuse what net/http takes: that only means
// net/http serves it.)
func FuzzParseHead(f *testing.F) {
	for _, tc := range parseHeadCases {
		f.Add([]byte(tc.head))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		got := parseHead(head)
		if got == nil {
			return
		}
		want := readRequestAsServer(head)
		if want == nil {
			t.Fatalf("parseHead takes %q, http.ReadRequest refuses it", head)
		}
		sameRequest(t, head, got, want)
		if hosts := strings.Count(strings.ToLower(string(head)), "\r\nhost:"); hosts != 1 {
			t.Fatalf("parseHead takes %q with %d Host fields", head, hosts)
		}
	})
}

// BenchmarkParseHead and BenchmarkReadRequest parse the same head, the one
// go-router's latency tool sends, the way the fast path and net/http do.
func BenchmarkParseHead(b *testing.B) {
	head := []byte(parseHeadCases[0].head)
	b.ReportAllocs()
	for b.Loop() {
		if parseHead(head) == nil {
			b.Fatal("not taken")
		}
	}
}

func BenchmarkReadRequest(b *testing.B) {
	head := []byte(parseHeadCases[0].head)
	r := bytes.NewReader(head)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(head)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
