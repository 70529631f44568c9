package main

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestOneCodeLinePerHexDocument(t *testing.T) {
	valid := `{"version":"v1","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://127.0.0.1:1"}}}`
	docs := []string{valid, "{\"version\":\n1}", "", `{"version":"v1","x":1}`}
	var in strings.Builder
	for _, doc := range docs {
		in.WriteString(hex.EncodeToString([]byte(doc)) + "\n")
	}
	var out strings.Builder
	if err := run(strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	if want := "ok\nparse_error\nparse_error\nunknown_field\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if err := run(strings.NewReader("not hex\n"), &out); err == nil {
		t.Fatal("a line that is not hex was accepted")
	}
}
