package scenario

import (
	"strings"
	"testing"
)

const root = "../.."

const good = `{
  "name": "x",
  "question": "q?",
  "config": "config/examples/demo.json",
  "access_log": "off",
  "targets": [{"routing_key": "acme", "method": "GET", "path": "/", "weight": 1}],
  "rate": 10,
  "duration_ms": 1000,
  "timeline": [{"at_ms": 100, "action": "chaos", "cell": "tier1", "chaos": {"down": true}}],
  "slo": {"min_success": 0.99, "max_p99_ms": 10}
}`

func TestSLOMisses(t *testing.T) {
	slo := SLO{MinSuccess: 0.999, MaxP99Ms: 25}
	for _, c := range []struct {
		success, p99 float64
		want         string
	}{
		{1, 25, ""}, // both bounds are inclusive
		{0.999, 10, ""},
		{0.998, 10, "success 99.800 % < 99.900 %"},
		{1, 25.5, "p99 25.50 ms > 25 ms"},
		{0.5, 100, "success 50.000 % < 99.900 %; p99 100.00 ms > 25 ms"},
	} {
		if got := strings.Join(slo.Misses(c.success, c.p99), "; "); got != c.want {
			t.Errorf("success %v, p99 %v: %q, want %q", c.success, c.p99, got, c.want)
		}
	}
}
