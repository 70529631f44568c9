package main

import (
	"cellbench/internal/testkit"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func (cp *testCP) metrics(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(cp.baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// metricValue is the value of an unlabelled counter or gauge.
func metricValue(t testing.TB, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) != 1 {
		t.Fatalf("%s: want one series, have %v", name, f)
	}
	m := f.GetMetric()[0]
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestMetricsCountNodesPushesAcksAndNacks(t *testing.T) {
	cp := startCP(t, cpOptions{token: "s3cret"})
	startRouter(t, cp, "edge-a", "s3cret", nil)
	startRouter(t, cp, "edge-b", "s3cret", func(version string) error {
		if version == "v2" {
			return errors.New("refused for the test")
		}
		return nil
	})
	testkit.WaitFor(t, 5*time.Second, "v1 acked by both", func() bool { return cp.status(t).ackedBy("v1", "edge-a", "edge-b") })
	// Token-free, like /status: metrics name no secret.
	if got := metricValue(t, cp.metrics(t), "cellbench_cp_connected_nodes"); got != 2 {
		t.Fatalf("connected nodes = %v, want 2", got)
	}

	if resp := cp.put(t, "s3cret", demoDoc(t, "v2")); resp.status != http.StatusAccepted {
		t.Fatalf("PUT v2 = %d %v", resp.status, resp.body)
	}
	testkit.WaitFor(t, 5*time.Second, "v2 acked by edge-a and nacked by edge-b", func() bool {
		st := cp.status(t)
		b, ok := st.node("edge-b")
		return st.ackedBy("v2", "edge-a") && ok && b.LastNack != nil
	})
	fams := cp.metrics(t)
	// v1 to each router after its hello, then v2 to both; "at least", as a
	// router that reconnects under load is sent the current one again.
	pushes := metricValue(t, fams, "cellbench_cp_snapshot_pushes_total")
	acks := metricValue(t, fams, "cellbench_cp_acks_total")
	nacks := metricValue(t, fams, "cellbench_cp_nacks_total")
	if pushes < 4 || acks < 3 || nacks < 1 || acks+nacks > pushes {
		t.Errorf("pushes %v, acks %v, nacks %v: want at least 4, 3 (v1 twice, v2 once) and 1, and no more answers than pushes", pushes, acks, nacks)
	}
	h := fams["cellbench_cp_push_to_ack_seconds"].GetMetric()[0].GetHistogram()
	if n := float64(h.GetSampleCount()); n < 3 || n > acks || h.GetSampleSum() <= 0 || h.GetSampleSum() > 15*n {
		t.Errorf("push-to-ack histogram: %d samples, sum %vs; want one per ack of a push (%v acks), each a loopback round trip", h.GetSampleCount(), h.GetSampleSum(), acks)
	}
	if _, ok := fams["process_cpu_seconds_total"]; !ok {
		t.Error("no process metrics")
	}
}
