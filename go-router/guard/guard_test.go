package guard

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// net/http.Server answers a head cut by its header timeout mid-line with
// 400 (bufio hands it the partial line as a whole one); through the guard
// it closes without an answer, as the contract says. Its other answers to
// malformed heads still go out, also right after a response (when net/http
// has just cut its own background read).
func TestHeadTimeoutClosesWithoutAnswer(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	reg := NewRegistry(Options{HeadTimeout: 300 * time.Millisecond, IdleTimeout: time.Second, MaxConns: 16})
	reg.Protect(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(reg.Listener(ln))
	defer srv.Close()

	exchange := func(t *testing.T, parts ...string) string {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i, p := range parts {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			io.WriteString(conn, p)
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(conn)
		return string(got)
	}
	const ok = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	statuses := func(s string) string {
		var out []string
		for _, part := range strings.Split(s, "HTTP/1.1 ")[1:] {
			out = append(out, part[:3])
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		name  string
		parts []string
		want  string
	}{
		{"head cut mid-line", []string{"GET / HTTP/1.1\r\n", "Host: h\r\n", "X-Sl"}, ""},
		{"later head cut mid-line", []string{ok + "GET / HTTP/1.1\r\nX-Sl"}, "200"},
		{"malformed head", []string{"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"}, "400"},
		{"malformed head after a response", []string{ok, "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"}, "200 400"},
		{"malformed head pipelined after one", []string{ok + "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"}, "200 400"},
	} {
		if got := statuses(exchange(t, c.parts...)); got != c.want {
			t.Errorf("%s: answers %q, want %q", c.name, got, c.want)
		}
	}
}
