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
	"time"

	"cellbench/config"
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
	var access *AccessLog
	if accessLog {
		access = NewAccessLog(f, f)
		defer access.Close()
	}
	rt := New(Options{Events: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessLog: access})
	defer rt.Close()
	doc := fmt.Sprintf(`{"version": "bench", "default_placement": "p", "routes": {"acme": "p"},
	  "placements": {"p": {"kind": "shared", "endpoint": %q, "fallback": "backup" %s},
	                 "backup": {"kind": "shared", "endpoint": %q}}}`, endpoint, features, endpoint)
	if err := rt.Apply([]byte(doc), SourceFile); err != nil {
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

func benchExchange() (*exchange, *placement) {
	p := &placement{name: "tier1", endpoint: "http://127.0.0.1:9001"}
	ex := &exchange{start: time.Now(), requestID: "0123456789abcdef-1a", routingKey: "acme", routed: true,
		primary: p, serving: p, attempts: 1, upstream: 812 * time.Microsecond, status: 200, bytesOut: 430}
	return ex, p
}

// BenchmarkAccessLogEncoder and BenchmarkAccessLogSlog compare the
// hand-written access-log line with the same line through log/slog's JSON
// handler; the encoder exists because of this difference.
func BenchmarkAccessLogEncoder(b *testing.B) {
	ex, _ := benchExchange()
	ex.snap = benchSnapshot()
	l := NewAccessLog(io.Discard, nil)
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		l.write(ex, "GET", "/api/v1/items", time.Now())
	}
}

func BenchmarkAccessLogSlog(b *testing.B) {
	ex, p := benchExchange()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		end := time.Now()
		logger.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("request_id", ex.requestID), slog.String("method", "GET"), slog.String("path", "/api/v1/items"),
			slog.String("routing_key", ex.routingKey), slog.String("placement", p.name), slog.String("route_reason", ex.reason.String()),
			slog.String("failover_reason", ex.failover.String()), slog.String("upstream", p.endpoint), slog.Int("status", ex.status),
			slog.Int("attempts", ex.attempts), slog.String("error", ex.errCode), slog.Float64("duration_ms", ms(end.Sub(ex.start))),
			slog.Float64("upstream_ms", ms(ex.upstream)), slog.Int64("bytes_out", ex.bytesOut), slog.String("config_version", "bench"),
			slog.String("router", "go"))
	}
}

func benchSnapshot() *snapshot {
	return &snapshot{cfg: &config.Config{Version: "bench"}}
}

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
