package jsonstr

import (
	"encoding/json"
	"testing"
)

// FuzzAppend holds the hand-written encoder to encoding/json: any input must
// give valid JSON that decodes to what encoding/json's own encoding decodes
// to (U+FFFD for invalid UTF-8 included).
func FuzzAppend(f *testing.F) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"utf-8 ✓ é 日本", "bad utf-8 \xff\xfe end", "truncated \xe2\x9c", "</script>&", "\u2028\u2029",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Append(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("Append(%q) = %s, not valid JSON: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Append(%q) decodes to %q, want %q", s, got, want)
		}
	})
}

func TestAppendKeepsPrefix(t *testing.T) {
	if got := string(Append([]byte(`{"k":`), "v")); got != `{"k":"v"` {
		t.Fatalf("got %s", got)
	}
}
