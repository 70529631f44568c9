package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestAccessLogTimestamp(t *testing.T) {
	l := &AccessLog{}
	for _, ts := range []time.Time{
		time.Date(2026, 11, 26, 2, 29, 9, 598_765_432, time.UTC),
		time.Date(2026, 11, 26, 2, 29, 9, 5_000_000, time.UTC), // same second, cached prefix
		time.Date(2026, 11, 26, 2, 29, 10, 0, time.UTC),
	} {
		got := string(l.appendTimestamp(nil, ts))
		if want := ts.Format("2006-01-02T15:04:05.000Z07:00"); got != want {
			t.Errorf("appendTimestamp = %q, want %q", got, want)
		}
	}
}

// A line is the contract's JSON object with every field, in the contract's
// names, whatever characters its strings hold.
func TestAccessLogLine(t *testing.T) {
	var buf bytes.Buffer
	l := NewAccessLog(&buf, nil)
	line := benchLine()
	line.Path = "/a\"b\\c\x01"
	l.Write(&line)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", buf.Bytes(), err)
	}
	want := map[string]any{
		"ts": "2026-11-26T02:29:09.598Z", "level": "INFO", "msg": "request", "request_id": "0123456789abcdef-1a",
		"method": "GET", "path": "/a\"b\\c\x01", "routing_key": "acme", "placement": "tier1", "route_reason": "dedicated",
		"failover_reason": "", "upstream": "http://127.0.0.1:9001", "status": 200.0, "attempts": 1.0, "error": "",
		"duration_ms": 1.5, "upstream_ms": 0.812, "bytes_out": 430.0, "config_version": "bench", "router": "go",
	}
	if len(got) != len(want) {
		t.Errorf("%d fields, want %d: %s", len(got), len(want), buf.Bytes())
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func benchLine() Line {
	return Line{End: time.Date(2026, 11, 26, 2, 29, 9, 598_765_432, time.UTC), RequestID: "0123456789abcdef-1a",
		Method: "GET", Path: "/api/v1/items", RoutingKey: "acme", Placement: "tier1", RouteReason: "dedicated",
		Upstream: "http://127.0.0.1:9001", Status: 200, Attempts: 1, Duration: 1500 * time.Microsecond,
		UpstreamTime: 812 * time.Microsecond, BytesOut: 430, ConfigVersion: "bench"}
}

// BenchmarkAccessLogEncoder and BenchmarkAccessLogSlog compare the
// hand-written access-log line with the same line through log/slog's JSON
// handler; the encoder exists because of this difference.
func BenchmarkAccessLogEncoder(b *testing.B) {
	line := benchLine()
	l := NewAccessLog(io.Discard, nil)
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		line.End = time.Now()
		l.Write(&line)
	}
}

func BenchmarkAccessLogSlog(b *testing.B) {
	line := benchLine()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		logger.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("request_id", line.RequestID), slog.String("method", line.Method), slog.String("path", line.Path),
			slog.String("routing_key", line.RoutingKey), slog.String("placement", line.Placement), slog.String("route_reason", line.RouteReason),
			slog.String("failover_reason", line.FailoverReason), slog.String("upstream", line.Upstream), slog.Int("status", line.Status),
			slog.Int("attempts", line.Attempts), slog.String("error", line.Error), slog.Float64("duration_ms", Milliseconds(line.Duration)),
			slog.Float64("upstream_ms", Milliseconds(line.UpstreamTime)), slog.Int64("bytes_out", line.BytesOut), slog.String("config_version", line.ConfigVersion),
			slog.String("router", "go"))
	}
}
