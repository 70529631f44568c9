package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is what GET /metrics exports (docs/protocol.md lists it). Each
// server has its own registry, so tests in one process do not share counts.
type metrics struct {
	registry  *prometheus.Registry
	pushes    prometheus.Counter
	acks      prometheus.Counter
	nacks     prometheus.Counter
	pushToAck prometheus.Histogram
}

func newMetrics(connectedNodes func() int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellbench_cp_snapshot_pushes_total",
			Help: "Config snapshots sent to routers (counted as each write starts).",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellbench_cp_acks_total",
			Help: "Snapshots a router reported applied.",
		}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellbench_cp_nacks_total",
			Help: "Snapshots a router reported rejected.",
		}),
		pushToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cellbench_cp_push_to_ack_seconds",
			Help: "From writing a snapshot to a router to its ack of that version.",
			// 0.5 ms (a loopback router) to 16 s (one that validates slowly).
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cellbench_cp_connected_nodes",
		Help: "Routers connected now (past their hello).",
	}, func() float64 { return float64(connectedNodes()) })
	m.registry.MustRegister(m.pushes, m.acks, m.nacks, m.pushToAck, connected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// acked counts an ack and, when it answers the session's last push, its
// latency (an ack of an older version, overtaken by a newer push, is not
// that push's answer).
func (m *metrics) acked(sess *session, version string) {
	m.acks.Inc()
	if since, ok := sess.answered(version); ok {
		m.pushToAck.Observe(since.Seconds())
	}
}

func (m *metrics) nacked(sess *session, version string) {
	m.nacks.Inc()
	sess.answered(version)
}
