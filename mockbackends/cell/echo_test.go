package cell

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestAppendEcho(t *testing.T) {
	e := &echo{
		cell:       "tier1",
		method:     "POST",
		path:       "/a%2Fb/c",
		query:      "x=1&y=\"2\"",
		header:     http.Header{"X-Multi": {"one", "two"}, "Content-Length": {"3"}, "X-Odd": {"\x01\xff"}},
		host:       "example.test:8080",
		transferTE: []string{"chunked"},
		bodyBytes:  3,
		bodySHA256: sha256.Sum256([]byte("abc")),
	}
	out, _ := appendEcho(nil, e, nil)
	var got Echo
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("echo %s is not valid JSON: %v", out, err)
	}
	wantHeaders := map[string][]string{
		"X-Multi": {"one", "two"}, "Content-Length": {"3"}, "X-Odd": {"\x01\ufffd"},
		"Host": {"example.test:8080"}, "Transfer-Encoding": {"chunked"},
	}
	if got.Cell != "tier1" || got.Method != "POST" || got.Path != "/a%2Fb/c" || got.Query != e.query ||
		got.BodyBytes != 3 || got.BodySHA256 != hex.EncodeToString(e.bodySHA256[:]) ||
		!reflect.DeepEqual(got.Headers, wantHeaders) {
		t.Fatalf("echo decoded to %+v", got)
	}
}
