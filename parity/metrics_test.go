package parity

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// labels selects series by a subset of their labels.
type labels map[string]string

// metricsPage is one scrape of the admin /metrics endpoint.
type metricsPage struct {
	raw         string
	contentType string
	families    map[string]*dto.MetricFamily
}

func (r *router) metrics(t testing.TB) metricsPage {
	t.Helper()
	resp, err := r.http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, b)
	}
	return metricsPage{raw: string(b), contentType: resp.Header.Get("Content-Type"), families: fams}
}

// exposes reports whether the page names the metric at all: as a sample or
// as a HELP/TYPE line (a labelled family may have no series yet).
func (m metricsPage) exposes(name string) bool {
	if _, ok := m.families[name]; ok {
		return true
	}
	for _, line := range strings.Split(m.raw, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "#" && (f[1] == "HELP" || f[1] == "TYPE") && f[2] == name {
			return true
		}
	}
	return false
}

// series returns the series of a family whose labels include sel.
func (m metricsPage) series(name string, sel labels) []*dto.Metric {
	var out []*dto.Metric
	fam := m.families[name]
	if fam == nil {
		return nil
	}
	for _, s := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range s.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range sel {
			if have[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

// value is the value of exactly one series (a histogram's sample count);
// it fails the test when the series is missing or ambiguous.
func (m metricsPage) value(t testing.TB, name string, sel labels) float64 {
	t.Helper()
	ss := m.series(name, sel)
	if len(ss) != 1 {
		t.Fatalf("%s%v: %d matching series, want 1", name, sel, len(ss))
	}
	return sampleValue(ss[0])
}

// seriesValue is like value, but 0 when no series matches yet (a labelled
// counter may appear with its first event).
func seriesValue(t testing.TB, m metricsPage, name string, sel labels) float64 {
	t.Helper()
	if len(m.series(name, sel)) == 0 {
		return 0
	}
	return m.value(t, name, sel)
}

// histogramSum is the sample sum of the one histogram series matching sel
// (0 when there is none).
func histogramSum(m metricsPage, name string, sel labels) float64 {
	ss := m.series(name, sel)
	if len(ss) != 1 || ss[0].Histogram == nil {
		return 0
	}
	return ss[0].Histogram.GetSampleSum()
}

func sampleValue(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	default:
		return s.Untyped.GetValue()
	}
}
