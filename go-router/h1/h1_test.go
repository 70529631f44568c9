package h1

import (
	"net/http"
	"net/textproto"
	"reflect"
	"testing"
)

// FuzzIsCanonical: a name isCanonical keeps as it is must be what
// textproto would make of it, for every valid token.
func FuzzIsCanonical(f *testing.F) {
	for _, name := range []string{"Host", "host", "X-Routing-Key", "x-routing-key", "X-1abc", "Www-Authenticate", "WWW-Authenticate", "X--Y", "Content-MD5", "ETag", "A"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidToken(name) && isCanonical(name) {
			if c := textproto.CanonicalMIMEHeaderKey(name); c != name {
				t.Fatalf("isCanonical(%q) but textproto makes it %q", name, c)
			}
		}
	})
}

func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		block string
		want  http.Header // nil: refused
	}{
		{"\r\n", http.Header{}},
		{"a: 1\r\nB:2\r\nA:  3 \r\n\r\n", http.Header{"A": {"1", "3"}, "B": {"2"}}},
		{"X-E:\r\n\r\n", http.Header{"X-E": {""}}},
		{"a: 1\r\n", nil},           // no empty line
		{"\n", nil},                 // no CRLF at all: must not panic
		{"a: 1\r\n\r\nextra", nil},  // bytes after the head
		{"a 1\r\n\r\n", nil},        // no colon
		{"a : 1\r\n\r\n", nil},      // space before the colon
		{" a: 1\r\n\r\n", nil},      // obs-fold / leading space
		{"a: 1\x00\r\n\r\n", nil},   // control character
		{"a: 1\nb: 2\r\n\r\n", nil}, // bare LF inside a line
		{"(a): 1\r\n\r\n", nil},     // not a token
	} {
		h, ok := ParseFields(tc.block, func(string, string) (bool, bool) { return true, true })
		if ok != (tc.want != nil) || ok && !reflect.DeepEqual(h, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.block, h, ok, tc.want)
		}
	}
}
