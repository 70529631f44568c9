package protocol

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withNewline := write("token", "s3cret\r\n")
	empty := write("empty", "\n")
	t.Setenv(TokenEnv, "from-env")
	for _, c := range []struct {
		name, flag, file, want string
		fails                  bool
	}{
		{name: "flag wins over the environment", flag: "f", want: "f"},
		{name: "file without its line ending", file: withNewline, want: "s3cret"},
		{name: "environment when no flag", want: "from-env"},
		{name: "flag and file", flag: "f", file: withNewline, fails: true},
		{name: "empty file", file: empty, fails: true},
		{name: "missing file", file: filepath.Join(dir, "absent"), fails: true},
	} {
		got, err := ResolveToken(c.flag, c.file)
		if (err != nil) != c.fails || got != c.want {
			t.Errorf("%s: got %q, %v", c.name, got, err)
		}
	}
	t.Setenv(TokenEnv, "")
	if got, err := ResolveToken("", ""); got != "" || err != nil {
		t.Errorf("nothing given: got %q, %v, want no token", got, err)
	}
}
