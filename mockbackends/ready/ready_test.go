package ready

import (
	"strings"
	"testing"
)

func TestWriteThenParse(t *testing.T) {
	var b strings.Builder
	if err := New("127.0.0.1:9900", map[string]string{"a": "127.0.0.1:9001"}).Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("%q is not one line", out)
	}
	l, err := Parse(strings.TrimSuffix(out, "\n"))
	if err != nil || l.Admin != "127.0.0.1:9900" || l.Cells["a"] != "127.0.0.1:9001" || len(l.Cells) != 1 {
		t.Fatalf("%+v, %v", l, err)
	}
}

func TestOtherLinesAreNotTheReadyLine(t *testing.T) {
	for _, line := range []string{"", "ready", `{"msg":"shutdown","cells":{}}`, `{"msg":"ready"`, `["ready"]`} {
		if Is(line) {
			t.Errorf("%q taken for the ready line", line)
		}
	}
	if !Is(`{"msg":"ready","admin":"127.0.0.1:1","cells":{}}`) {
		t.Error("a ready line not recognised")
	}
}
