package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"cellbench/go-router/obs"
	"cellbench/go-router/snapshot"
)

// allFeatures turns every per-placement feature on, with limits the
// benchmark never reaches.
const allFeatures = `,
  "timeouts": {"connect_ms": 1000, "response_header_ms": 15000},
  "health_check": {"path": "/health", "interval_ms": 60000, "timeout_ms": 500, "unhealthy_threshold": 2, "healthy_threshold": 2},
  "circuit_breaker": {"failure_threshold": 5, "open_ms": 10000},
  "rate_limit": {"requests_per_second": 1e9, "burst": 1000000000, "per": "routing_key"},
  "retry": {"max_attempts": 2},
  "concurrency_limit": 100000,
  "max_request_body_bytes": 10485760`

// BenchmarkProxy is one proxied GET through the full handler with every
// feature on and the access log writing to a file. The upstream is a
// loopback net/http server, so ns/op includes its work; allocs/op is the
// number to watch.
func BenchmarkProxy(b *testing.B) {
	b.Run("all-features", func(b *testing.B) { benchmarkProxy(b, allFeatures, true) })
	b.Run("bare", func(b *testing.B) { benchmarkProxy(b, "", false) })
}

func benchmarkProxy(b *testing.B, features string, accessLog bool) {
	endpoint := upstreamFunc(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	var access *obs.AccessLog
	if accessLog {
		access = obs.NewAccessLog(f, f)
		defer access.Close()
	}
	rt := New(Options{Events: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessLog: access})
	defer rt.Close()
	doc := fmt.Sprintf(`{"version": "bench", "default_placement": "p", "routes": {"acme": "p"},
	  "placements": {"p": {"kind": "shared", "endpoint": %q, "fallback": "backup" %s},
	                 "backup": {"kind": "shared", "endpoint": %q}}}`, endpoint, features, endpoint)
	if err := rt.Store().Apply([]byte(doc), snapshot.SourceFile); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://router.example/api/v1/items?id=7", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Routing-Key", "acme")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{header: make(http.Header, 16)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.header)
		rt.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      {}

// BenchmarkDirectTransport is BenchmarkProxy's upstream request without the
// router: an http.Transport round trip to the same kind of loopback server.
// BenchmarkProxy minus this is what the router adds.
func BenchmarkDirectTransport(b *testing.B) {
	endpoint := upstreamFunc(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", endpoint+"/api/v1/items?id=7", nil)
	req.Header.Set("X-Routing-Key", "acme")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
}
