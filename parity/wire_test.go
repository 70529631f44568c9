package parity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Contract §2 wire rules (RFC 9112), over raw TCP. Wire-level rejections are
// checked for status and connection handling only: the request could not be
// parsed, so the router knows none of the values its JSON error body would carry.
func TestWireRules(t *testing.T) {
	t.Parallel()
	c := startCells(t, "w")
	r := startRouter(t, configDoc("wire-1", "w",
		map[string]string{"kw": "w"},
		doc{"w": placement("shared", c.endpoint("w"), nil)}))
	const wait = 3 * time.Second

	// untouched checks that a malformed request never reached the cell.
	untouched := func(t *testing.T, send func()) {
		t.Helper()
		before := c.settledRequests(t, "w")
		send()
		if n := c.settledRequests(t, "w") - before; n != 0 {
			t.Errorf("the cell got %d requests from one the router must refuse", n)
		}
	}

	t.Run("head over 64 KiB is 431", func(t *testing.T) {
		cases := map[string]string{
			"one large header":  "GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
			"many headers":      "GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n" + strings.Repeat("X-Many: "+strings.Repeat("b", 700)+"\r\n", 100) + "\r\n",
			"long request line": "GET /" + strings.Repeat("p", 70<<10) + " HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n",
		}
		for name, head := range cases {
			t.Run(name, func(t *testing.T) {
				untouched(t, func() {
					want := http.StatusRequestHeaderFieldsTooLarge
					if d, ok := documentedDivergence(t); ok {
						want = d.status
					}
					resps, _ := rawExchange(t, r.listen, []byte(head), wait)
					wantLocal(t, resps)
					if len(resps) == 0 || resps[0].status != want {
						t.Errorf("want %d, got %v", want, statuses(resps))
					}
				})
			})
		}
	})

	t.Run("head under 64 KiB passes", func(t *testing.T) {
		// The contract's only limit is the size: neither one long field nor
		// many short ones (300 fields, 6 KiB) may be refused below it.
		var many strings.Builder
		for i := range 300 {
			fmt.Fprintf(&many, "X-Field-%d: v\r\n", i)
		}
		cases := map[string]string{
			"one 60 KiB field": "X-Big: " + strings.Repeat("a", 60<<10) + "\r\n",
			"300 short fields": many.String(),
		}
		for name, fields := range cases {
			t.Run(name, func(t *testing.T) {
				payload := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nConnection: close\r\n" + fields + "\r\n")
				if d, ok := documentedDivergence(t); ok {
					untouched(t, func() {
						resps, _ := rawExchange(t, r.listen, payload, wait)
						wantLocal(t, resps)
						if len(resps) != 1 || resps[0].status != d.status {
							t.Errorf("want %d, got %v", d.status, statuses(resps))
						}
					})
					return
				}
				resps, _ := rawExchange(t, r.listen, payload, wait)
				if len(resps) != 1 || resps[0].status != http.StatusOK {
					t.Errorf("want 200, got %v", statuses(resps))
				}
			})
		}
	})

	t.Run("invalid Content-Length is 400", func(t *testing.T) {
		for _, cl := range []string{"abc", "-1", "1.5", "0x10", "5, 6", "+5", ""} {
			t.Run(cl, func(t *testing.T) {
				untouched(t, func() {
					resps, closed := rawExchange(t, r.listen, []byte("POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nContent-Length: "+cl+"\r\n\r\nhello"), wait)
					wantLocal(t, resps)
					if len(resps) != 1 || resps[0].status != http.StatusBadRequest {
						t.Errorf("Content-Length %q: want one 400, got %v", cl, statuses(resps))
					}
					if !closed {
						t.Errorf("Content-Length %q: connection left open after the 400; the body's framing is unknown", cl)
					}
				})
			})
		}
		t.Run("two different values", func(t *testing.T) {
			untouched(t, func() {
				resps, _ := rawExchange(t, r.listen, []byte("POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), wait)
				wantLocal(t, resps)
				if len(resps) != 1 || resps[0].status != http.StatusBadRequest {
					t.Errorf("want one 400, got %v", statuses(resps))
				}
			})
		})
	})

	t.Run("Content-Length with Transfer-Encoding never smuggles", func(t *testing.T) {
		const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n"
		cases := map[string]string{
			"CL first":                        "POST /front HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			"TE first":                        "POST /front HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
			"CL longer than the chunked body": "POST /front HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		}
		for name, payload := range cases {
			t.Run(name, func(t *testing.T) {
				before := c.settledRequests(t, "w")
				resps, closed := rawExchange(t, r.listen, []byte(payload), wait)
				if len(resps) != 1 {
					t.Fatalf("want exactly one response, got %v", statuses(resps))
				}
				if !closed {
					t.Errorf("connection left open after the response (RFC 9112 §6.1: 400, or chunked and close)")
				}
				time.Sleep(200 * time.Millisecond) // a smuggled request would be on its way
				n := c.settledRequests(t, "w") - before
				switch resps[0].status {
				case http.StatusBadRequest: // the first allowed behaviour
					wantLocal(t, resps)
					if n != 0 {
						t.Errorf("answered 400 but the cell got %d requests", n)
					}
				default: // the second: read as chunked, answered, closed
					var e echo
					json.Unmarshal(resps[0].body, &e)
					if resps[0].status != http.StatusOK || e.Path != "/front" || e.BodyBytes != 0 {
						t.Errorf("want 400, or the chunked (empty) POST /front answered; got %d %s", resps[0].status, resps[0].body)
					}
					if n != 1 {
						t.Errorf("the cell got %d requests, want only POST /front", n)
					}
				}
				for _, line := range r.accessLines(t) {
					if line["path"] == "/smuggled" {
						t.Errorf("the smuggled request was run: %v", line)
					}
				}
			})
		}
	})

	t.Run("Host must be there once", func(t *testing.T) {
		// RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host or with two.
		for name, payload := range map[string]string{
			"no Host":   "GET / HTTP/1.1\r\nX-Routing-Key: kw\r\n\r\n",
			"two Hosts": "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nX-Routing-Key: kw\r\n\r\n",
		} {
			t.Run(name, func(t *testing.T) {
				untouched(t, func() {
					resps, _ := rawExchange(t, r.listen, []byte(payload), wait)
					wantLocal(t, resps)
					if len(resps) != 1 || resps[0].status != http.StatusBadRequest {
						t.Errorf("want one 400, got %v", statuses(resps))
					}
				})
			})
		}
	})

	t.Run("only a single final chunked coding is accepted", func(t *testing.T) {
		// docs/contract.md §2 (RFC 9112 §6.1): a Transfer-Encoding whose final
		// coding is not chunked gets 400; one that ends in chunked but has
		// other codings too gets 501, as the router cannot re-frame it
		// honestly. Either way the request never reaches a cell and the
		// connection is closed.
		for _, tc := range []struct {
			name, te string
			status   int
		}{
			{"chunked twice", "chunked, chunked", http.StatusNotImplemented},
			{"two chunked lines", "chunked\r\nTransfer-Encoding: chunked", http.StatusNotImplemented},
			{"gzip then chunked", "gzip, chunked", http.StatusNotImplemented},
			{"unknown coding", "bogus", http.StatusBadRequest},
			{"chunked then other", "chunked, gzip", http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				untouched(t, func() {
					resps, closed := rawExchange(t, r.listen, []byte("POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nTransfer-Encoding: "+tc.te+"\r\n\r\n0\r\n\r\n"), wait)
					wantLocal(t, resps)
					want := tc.status
					if d, ok := documentedDivergence(t); ok {
						want = d.status
					}
					if len(resps) != 1 || resps[0].status != want {
						t.Errorf("Transfer-Encoding %q: want one %d, got %v", tc.te, want, statuses(resps))
					}
					if !closed {
						t.Errorf("Transfer-Encoding %q: connection left open; the body's framing is unknown", tc.te)
					}
				})
			})
		}
		// Coding names are case-insensitive (RFC 9112 §7).
		resps, _ := rawExchange(t, r.listen, []byte("POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), wait)
		if len(resps) != 1 || resps[0].status != http.StatusOK {
			t.Errorf("Transfer-Encoding: Chunked: want 200, got %v", statuses(resps))
		} else if e := (echo{}); json.Unmarshal(resps[0].body, &e) != nil || e.BodyBytes != 5 {
			t.Errorf("Transfer-Encoding: Chunked: the cell got %d body bytes, want 5", e.BodyBytes)
		}
	})

	t.Run("a malformed chunked body is the client's error", func(t *testing.T) {
		// docs/contract.md §3: 400 bad_request, a router-made error, for a
		// body that cannot be read before any response started.
		resps, _ := rawExchange(t, r.listen, []byte("POST / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), wait)
		if len(resps) != 1 {
			t.Fatalf("invalid chunk size: want one answer, got %v", statuses(resps))
		}
		wantRouterError(t, reply{status: resps[0].status, header: resps[0].header, body: resps[0].body}, http.StatusBadRequest, "bad_request")
	})

	t.Run("obs-fold is refused or unfolded", func(t *testing.T) {
		// RFC 9112 §5.2: reject with 400, or replace each obs-fold with SP.
		before := c.settledRequests(t, "w")
		resps, _ := rawExchange(t, r.listen, []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n"), wait)
		if len(resps) != 1 {
			t.Fatalf("want one response, got %v", statuses(resps))
		}
		switch resps[0].status {
		case http.StatusBadRequest:
			wantLocal(t, resps)
			if n := c.settledRequests(t, "w") - before; n != 0 {
				t.Errorf("answered 400 but the cell got %d requests", n)
			}
		case http.StatusOK:
			var e echo
			json.Unmarshal(resps[0].body, &e)
			if got := e.header("X-Fold"); len(got) != 1 || strings.Join(strings.Fields(got[0]), " ") != "a b" || strings.ContainsAny(got[0], "\r\n") {
				t.Errorf("folded X-Fold reached the cell as %q, want \"a b\"", got)
			}
		default:
			t.Errorf("want 400, or 200 with the field unfolded; got %d", resps[0].status)
		}
	})

	t.Run("CONNECT is refused, never tunnelled", func(t *testing.T) {
		// docs/contract.md §3: a reverse proxy offers no tunnel (RFC 9110
		// §9.3.6: a 2xx would tell the client one is open), so CONNECT is
		// the router-made 501 method_not_supported.
		untouched(t, func() {
			resps, _ := rawExchange(t, r.listen, []byte("CONNECT cell.example:443 HTTP/1.1\r\nHost: cell.example:443\r\nX-Routing-Key: kw\r\n\r\n"), wait)
			wantLocal(t, resps)
			if len(resps) != 1 {
				t.Fatalf("want one answer, got %v", statuses(resps))
			}
			wantRouterError(t, reply{status: resps[0].status, header: resps[0].header, body: resps[0].body}, http.StatusNotImplemented, "method_not_supported")
		})
	})

	t.Run("HTTP/1.0 is served and closed", func(t *testing.T) {
		resps, closed := rawExchange(t, r.listen, []byte("GET /old HTTP/1.0\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n"), wait)
		if len(resps) != 1 || resps[0].status != http.StatusOK || resps[0].header.Get("X-Cell") != "w" {
			t.Fatalf("want one 200 from w, got %v", statuses(resps))
		}
		if !closed {
			t.Errorf("HTTP/1.0 request without keep-alive: connection left open")
		}
	})

	t.Run("malformed requests are refused", func(t *testing.T) {
		for name, payload := range map[string]string{
			"garbage request line": "NOT-HTTP\r\n\r\n",
			"space before colon":   "GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key : kw\r\n\r\n",
			"header without colon": "GET / HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nNoColonHere\r\n\r\n",
			"target without slash": "GET abc HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n",
		} {
			t.Run(name, func(t *testing.T) {
				untouched(t, func() {
					resps, closed := rawExchange(t, r.listen, []byte(payload), wait)
					wantLocal(t, resps)
					switch {
					case len(resps) == 0 && closed: // dropped without an answer
					case len(resps) == 1 && resps[0].status/100 == 4 || len(resps) == 1 && resps[0].status == http.StatusNotImplemented:
					default:
						t.Errorf("want a 4xx (or 501) or a closed connection, got %v (closed %v)", statuses(resps), closed)
					}
				})
			})
		}
	})

	t.Run("pipelined requests are answered in order", func(t *testing.T) {
		// docs/contract.md §2 (RFC 9112 §9.3.2): answered in order, or the
		// first answered and the connection closed, the rest never run.
		before := c.settledRequests(t, "w")
		resps, closed := rawExchange(t, r.listen, []byte(
			"GET /one HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n"+
				"GET /two HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\n\r\n"+
				"GET /three HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nConnection: close\r\n\r\n"), wait)
		var paths []string
		for _, rp := range resps {
			var e echo
			json.Unmarshal(rp.body, &e)
			paths = append(paths, e.Path)
		}
		switch got := strings.Join(paths, " "); got {
		case "/one /two /three":
		case "/one":
			time.Sleep(200 * time.Millisecond)
			if n := c.settledRequests(t, "w") - before; !closed || n != 1 {
				t.Errorf("only /one answered: want the connection closed (%v) and one request at the cell (%d)", closed, n)
			}
		default:
			t.Errorf("pipelined /one /two /three answered as %q (statuses %v), want all three in order or only the first", paths, statuses(resps))
		}
	})

	t.Run("mutated requests never stop the router", func(t *testing.T) {
		// 300 deterministic mutations of a valid POST (byte flips, cuts,
		// injected CR, LF, NUL, colons and spaces, repeated slices), each
		// sent on its own connection, 10 at a time; the client half-closes
		// so an incomplete request ends instead of waiting for more bytes.
		valid := []byte("POST /m?q=1 HTTP/1.1\r\nHost: x\r\nX-Routing-Key: kw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		rng := rand.New(rand.NewPCG(1, 2))
		sem := make(chan struct{}, 10)
		var wg sync.WaitGroup
		var hung atomic.Int64
		for range 300 {
			payload := mutate(rng, valid)
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				conn, err := net.DialTimeout("tcp", r.listen, 2*time.Second)
				if err != nil {
					hung.Add(1)
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.Write(payload)
				conn.(*net.TCPConn).CloseWrite()
				if _, err := io.Copy(io.Discard, conn); err != nil && !isClosed(err) {
					hung.Add(1) // neither answered nor closed within 5 s
				}
			}()
		}
		wg.Wait()
		if n := hung.Load(); n > 0 {
			t.Errorf("%d of 300 connections neither answered nor closed within 5 s of the client's half-close", n)
		}
		if r.proc.Exited() {
			t.Fatalf("router exited: %v", r.proc.State())
		}
		wantServed(t, r.get(t, "/", "kw"), "w", "shared", "")
	})

	t.Run("router still serves", func(t *testing.T) {
		if r.proc.Exited() {
			t.Fatalf("router exited: %v", r.proc.State())
		}
		wantServed(t, r.get(t, "/", "kw"), "w", "shared", "")
	})
}

// wantLocal checks that a refusal came from the router itself: no upstream
// attempt and no cell. The cells' counters alone cannot show this, as the
// mock's own HTTP server rejects some malformed requests before counting them.
func wantLocal(t testing.TB, resps []rawResponse) {
	t.Helper()
	for _, rp := range resps {
		if a, cell := rp.header.Get("X-Upstream-Attempts"), rp.header.Get("X-Cell"); a != "" || cell != "" {
			t.Errorf("%d answered after an upstream attempt (X-Upstream-Attempts %q, X-Cell %q): a request the router must refuse was forwarded", rp.status, a, cell)
		}
	}
}

func statuses(resps []rawResponse) []int {
	out := []int{}
	for _, r := range resps {
		out = append(out, r.status)
	}
	return out
}

// mutate returns a copy of valid with one to three random edits.
func mutate(rng *rand.Rand, valid []byte) []byte {
	b := append([]byte(nil), valid...)
	for range 1 + rng.IntN(3) {
		i := rng.IntN(len(b))
		switch rng.IntN(6) {
		case 0: // flip a byte
			b[i] ^= byte(1 + rng.IntN(255))
		case 1: // cut
			b = b[:i]
		case 2: // inject a framing byte
			b = slices.Insert(b, i, []byte{'\r', '\n', 0, ':', ' ', '\t'}[rng.IntN(6)])
		case 3: // repeat a slice
			j := i + rng.IntN(len(b)-i)
			b = slices.Insert(b, j, b[i:j]...)
		case 4: // delete a byte
			b = slices.Delete(b, i, i+1)
		case 5: // a long token
			b = slices.Insert(b, i, bytes.Repeat([]byte{'a' + byte(rng.IntN(26))}, rng.IntN(5000))...)
		}
		if len(b) == 0 {
			b = append(b, 'G')
		}
	}
	return b
}
