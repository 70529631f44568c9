package parity

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Contract §2 rule 7: both bodies stream; neither is buffered whole.
func TestStreaming(t *testing.T) {
	t.Parallel()
	const (
		uploadHead  = 256 << 10 // what the client sends before it waits
		uploadTotal = 4 << 20
	)
	c := startCells(t, "s")

	// gate upstream: for uploads it signals once it has the first
	// uploadHead bytes; for downloads it sends one chunk, then waits for the
	// client to have it before it sends the last one.
	gotHead := make(chan struct{}, 1)
	clientHasChunk := make(chan struct{}, 1)
	gate := startRawUpstream(t, func(req *http.Request, conn net.Conn, br *bufio.Reader) bool {
		switch req.URL.Path {
		case "/upload":
			if _, err := io.ReadFull(req.Body, make([]byte, uploadHead)); err != nil {
				return false
			}
			gotHead <- struct{}{}
			rest, _ := io.Copy(io.Discard, req.Body)
			body := strconv.FormatInt(uploadHead+rest, 10)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		case "/truncated-length": // promises 100 bytes, sends 50, closes
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%s", bytesOf('t', 50))
			return false
		case "/truncated-chunked": // one chunk, then closes without the last chunk
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n%s\r\n", bytesOf('t', 50))
			return false
		case "/download":
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
			select {
			case <-clientHasChunk:
			case <-time.After(5 * time.Second):
			}
			fmt.Fprintf(conn, "5\r\nlast\n\r\n0\r\n\r\n")
		}
		return true
	})
	r := startRouter(t, configDoc("streaming-1", "s",
		map[string]string{"ks": "s", "kg": "gate"},
		doc{
			"s":    placement("shared", c.endpoint("s"), nil),
			"gate": placement("shared", gate.endpoint(), nil),
		}))

	// open sends a GET and returns the response with its body unread.
	open := func(t *testing.T, path, key string) *http.Response {
		t.Helper()
		hr, _ := http.NewRequest(http.MethodGet, r.base+path, nil)
		hr.Header.Set("X-Routing-Key", key)
		resp, err := r.http.Do(hr)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp
	}

	t.Run("a slow chunked response arrives chunk by chunk", func(t *testing.T) {
		const chunks, delay = 4, 400 * time.Millisecond
		start := time.Now()
		resp := open(t, "/?chunks=4&chunk_delay_ms=400", "ks")
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		firstAt := time.Since(start)
		if err != nil || first != "chunk 1/4\n" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "chunk 2/4\nchunk 3/4\nchunk 4/4\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
		total := time.Since(start)
		if total-firstAt < (chunks-1)*delay*3/4 {
			t.Errorf("first chunk after %v, whole body after %v: the first chunk waited for the rest", firstAt, total)
		}
	})

	t.Run("a response chunk is forwarded before the upstream sends the next", func(t *testing.T) {
		// Headers and the first chunk must both arrive while the upstream
		// holds back the last chunk.
		got := make(chan string, 1)
		go func() {
			hr, _ := http.NewRequest(http.MethodGet, r.base+"/download", nil)
			hr.Header.Set("X-Routing-Key", "kg")
			resp, err := r.http.Do(hr)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			got <- line
			io.Copy(io.Discard, resp.Body)
		}()
		select {
		case line := <-got:
			clientHasChunk <- struct{}{}
			if line != "first\n" {
				t.Fatalf("first chunk %q", line)
			}
		case <-time.After(3 * time.Second):
			clientHasChunk <- struct{}{}
			t.Fatalf("the first chunk did not reach the client while the upstream held back the last one: the router buffers responses")
		}
	})

	t.Run("a truncated upstream body is not passed off as complete", func(t *testing.T) {
		// The status is sent before the body fails, so the only honest
		// signal left is a broken response: the client must see an error,
		// never a well-framed short body.
		for _, path := range []string{"/truncated-length", "/truncated-chunked"} {
			hr, _ := http.NewRequest(http.MethodGet, r.base+path, nil)
			hr.Header.Set("X-Routing-Key", "kg")
			resp, err := r.http.Do(hr)
			if err != nil {
				continue // refused before any response: also honest
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("%s: the client read a complete %d-byte body (status %d) although the upstream broke off", path, len(body), resp.StatusCode)
			}
		}
	})

	t.Run("an upload reaches the upstream before the client has sent it all", func(t *testing.T) {
		pr, pw := io.Pipe()
		result := r.sendAsync(req{method: http.MethodPost, path: "/upload", key: "kg", body: pr, size: uploadTotal})
		if _, err := pw.Write(pattern(uploadHead)); err != nil {
			t.Fatalf("write: %v", err)
		}
		select {
		case <-gotHead:
		case <-time.After(5 * time.Second):
			pw.CloseWithError(fmt.Errorf("gave up"))
			t.Fatalf("the upstream did not get the first %d bytes while the client held back the rest: the router buffers uploads", uploadHead)
		}
		pw.Write(pattern(uploadTotal - uploadHead))
		pw.Close()
		if res := <-result; res.err != nil || res.status != http.StatusOK || string(res.body) != strconv.Itoa(uploadTotal) {
			t.Fatalf("want 200 with %d bytes received, got %v:\n%s", uploadTotal, res.err, res.reply)
		}
	})

	t.Run("a large upload arrives intact", func(t *testing.T) {
		const n = 16 << 20
		for _, size := range []int64{n, -1} {
			rp := r.do(t, req{method: http.MethodPost, path: "/up", key: "ks", body: newPattern(n), size: size})
			wantServed(t, rp, "s", "shared", "")
			if e := rp.echo(t); e.BodyBytes != n || e.BodySHA256 != patternSHA256(n) {
				t.Errorf("cell got %d bytes (sha %s), want %d", e.BodyBytes, e.BodySHA256, n)
			}
		}
	})

	t.Run("a large download arrives intact", func(t *testing.T) {
		const n = 32 << 20
		resp := open(t, "/?size="+strconv.Itoa(n), "ks")
		h := sha256.New()
		got, err := io.Copy(h, resp.Body)
		if err != nil || got != n {
			t.Fatalf("read %d bytes (%v), want %d", got, err, n)
		}
		want := sha256.Sum256(bytesOf('x', n))
		if hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want[:]) {
			t.Errorf("download content differs from the cell's")
		}
	})
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
