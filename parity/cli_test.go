package parity

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// Contract §5: exit statuses and signal handling of the router command.
func TestCommandLine(t *testing.T) {
	t.Parallel()

	// exits runs the router with args and wants exit status 2 promptly.
	exits2 := func(t *testing.T, args ...string) string {
		t.Helper()
		p := startProc(t, "router", routerBin, append(args, "--listen", testkit.FreeAddr(t), "--admin", testkit.FreeAddr(t), "--access-log", "off"))
		code, ok := p.WaitExit(startTimeout)
		if !ok {
			t.Fatalf("router %q still running after %v; want exit 2", args, startTimeout)
		}
		if code != 2 {
			t.Errorf("router %q: exit %d, want 2\nstderr:\n%s", args, code, p.stderr.String())
		}
		return p.stderr.String()
	}

	t.Run("missing config exits 2", func(t *testing.T) {
		// The contract names no code for a config that is not there; both
		// routers say config_missing, and must go on agreeing.
		missing := filepath.Join(t.TempDir(), "absent.json")
		if stderr := exits2(t, "--config", missing); !strings.Contains(stderr, "config_missing") || !strings.Contains(stderr, missing) {
			t.Errorf("stderr does not carry config_missing and the path %s:\n%s", missing, stderr)
		}
		if stderr := exits2(t); !strings.Contains(stderr, "config_missing") {
			t.Errorf("no --config: stderr does not carry config_missing:\n%s", stderr)
		}
	})

	t.Run("invalid config exits 2 with its code", func(t *testing.T) {
		cases := map[string]any{
			"parse_error":   []byte(`{"version": "x",`),
			"unknown_field": doc{"version": "x", "default_placement": "a", "placements": doc{"a": placement("shared", "http://127.0.0.1:1", nil)}, "bogus": 1},
			"fallback_cycle": configDoc("x", "a", nil, doc{
				"a": placement("shared", "http://127.0.0.1:1", doc{"fallback": "b"}),
				"b": placement("shared", "http://127.0.0.1:2", doc{"fallback": "a"}),
			}),
			"version_missing": doc{"default_placement": "a", "placements": doc{"a": placement("shared", "http://127.0.0.1:1", nil)}},
		}
		for code, cfg := range cases {
			t.Run(code, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "bad.json")
				writeConfig(t, path, cfg)
				if stderr := exits2(t, "--config", path); !strings.Contains(stderr, code) {
					t.Errorf("stderr does not carry the code %s:\n%s", code, stderr)
				}
			})
		}
	})

	t.Run("an unknown flag exits 2", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ok.json")
		writeConfig(t, path, configDoc("x", "a", nil, doc{"a": placement("shared", "http://127.0.0.1:1", nil)}))
		if stderr := exits2(t, "--config", path, "--no-such-flag"); !strings.Contains(stderr, "no-such-flag") {
			t.Errorf("stderr does not name the unknown flag:\n%s", stderr)
		}
	})

	t.Run("a control-plane token both by flag and by file, or an empty token file, exits 2", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ok.json")
		writeConfig(t, path, configDoc("x", "a", nil, doc{"a": placement("shared", "http://127.0.0.1:1", nil)}))
		tokenFile, emptyFile := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
		if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if stderr := exits2(t, "--config", path, "--control-plane-token", "s3cret", "--control-plane-token-file", tokenFile); !strings.Contains(stderr, "not both") {
			t.Errorf("stderr does not say why:\n%s", stderr)
		}
		if stderr := exits2(t, "--config", path, "--control-plane-token-file", emptyFile); !strings.Contains(stderr, "empty") {
			t.Errorf("stderr does not say the file is empty:\n%s", stderr)
		}
	})

	t.Run("a listen address in use fails at once", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		path := filepath.Join(t.TempDir(), "ok.json")
		writeConfig(t, path, configDoc("x", "a", nil, doc{"a": placement("shared", "http://127.0.0.1:1", nil)}))
		p := startProc(t, "router", routerBin, []string{"--config", path, "--listen", busy.Addr().String(), "--admin", testkit.FreeAddr(t), "--access-log", "off"})
		code, ok := p.WaitExit(startTimeout)
		if !ok {
			t.Fatalf("router still running with its listen address taken")
		}
		if code == 0 || strings.TrimSpace(p.stderr.String()) == "" {
			t.Errorf("exit %d with stderr %q: want a failure status and the reason", code, p.stderr.String())
		}
	})

	t.Run("SIGTERM drains an in-flight request and exits 0", func(t *testing.T) {
		const drainMs = 4000
		c := startCells(t, "p")
		r := startRouter(t, configDoc("cli-1", "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)}),
			"--drain-timeout-ms", itoa(drainMs))
		slow := r.sendAsync(req{path: "/?delay_ms=1500", key: "k"})
		eventually(t, 3*time.Second, 10*time.Millisecond, "slow request in flight", func() (bool, string) {
			return c.counters(t, "p").Inflight == 1, ""
		})
		termAt := time.Now()
		r.proc.Signal(syscall.SIGTERM)

		time.Sleep(300 * time.Millisecond)
		fresh := &http.Client{Timeout: time.Second}
		after, _ := http.NewRequest(http.MethodGet, r.base+"/", nil)
		after.Header.Set("X-Routing-Key", "k")
		if resp, err := fresh.Do(after); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("a new request after SIGTERM was served (%s); the router must stop accepting", resp.Status)
			}
		}

		if res := <-slow; res.err != nil || res.status != http.StatusOK || res.header.Get("X-Cell") != "p" {
			t.Errorf("in-flight request: want 200 from p, got %v:\n%s", res.err, res.reply)
		}
		code, ok := r.proc.WaitExit(drainMs*time.Millisecond + time.Second - time.Since(termAt))
		if !ok {
			t.Fatalf("router still running %v after SIGTERM (drain timeout %dms)", time.Since(termAt), drainMs)
		}
		t.Logf("exited %v after SIGTERM", time.Since(termAt).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0", code)
		}
		if len(r.events("shutdown")) == 0 {
			t.Errorf("no shutdown event on stderr")
		}
	})

	t.Run("the drain timeout bounds the wait", func(t *testing.T) {
		const drainMs = 500
		c := startCells(t, "p")
		r := startRouter(t, configDoc("cli-2", "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)}),
			"--drain-timeout-ms", itoa(drainMs))
		r.sendAsync(req{path: "/?delay_ms=10000", key: "k"})
		eventually(t, 3*time.Second, 10*time.Millisecond, "slow request in flight", func() (bool, string) {
			return c.counters(t, "p").Inflight == 1, ""
		})
		termAt := time.Now()
		r.proc.Signal(syscall.SIGTERM)
		code, ok := r.proc.WaitExit(drainMs*time.Millisecond + 1500*time.Millisecond)
		if !ok {
			t.Fatalf("router still running %v after SIGTERM with a %dms drain timeout", time.Since(termAt), drainMs)
		}
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	})

	t.Run("idle keep-alive connections do not hold the drain", func(t *testing.T) {
		c := startCells(t, "p")
		r := startRouter(t, configDoc("cli-4", "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)}), "--drain-timeout-ms", "5000")
		conn, err := net.Dial("tcp", r.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: k\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("keep-alive request: %v", err)
		}
		resp.Body.Close()
		termAt := time.Now()
		r.proc.Signal(syscall.SIGTERM)
		if code, ok := r.proc.WaitExit(time.Second); !ok || code != 0 {
			t.Errorf("with only an idle connection open: exited %v (code %d) within 1 s of SIGTERM; want exit 0 at once", ok, code)
		}
		t.Logf("exited %v after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	})

	t.Run("--workers and SIGINT", func(t *testing.T) {
		c := startCells(t, "p")
		r := startRouter(t, configDoc("cli-3", "p", nil, doc{"p": placement("shared", c.endpoint("p"), nil)}), "--workers", "1")
		wantServed(t, r.get(t, "/", "k"), "p", "default", "")
		r.proc.Signal(os.Interrupt)
		code, ok := r.proc.WaitExit(5 * time.Second)
		if !ok || code != 0 {
			t.Errorf("after SIGINT: exited %v with %d, want exit 0", ok, code)
		}
	})
}
