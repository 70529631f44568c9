package obs

import (
	"iter"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	upstreamHealthyDesc = prometheus.NewDesc("cellbench_upstream_healthy",
		"1 while the placement's health is healthy.", []string{"placement"}, nil)
	circuitStateDesc = prometheus.NewDesc("cellbench_circuit_state",
		"Breaker state of the placement: 0 closed, 1 half-open, 2 open.", []string{"placement"}, nil)
)

// PlacementStatus is a placement's live state as the scrape reads it.
type PlacementStatus struct {
	Name    string
	Healthy bool
	// Circuit is the cellbench_circuit_state value: 0 closed, 1 half-open, 2 open.
	Circuit float64
}

// liveCollector reads health and breaker state at scrape time instead of
// mirroring it into gauges: the series always match the placements of the
// current snapshot, and a breaker whose open period ran out shows
// half-open even if no request has touched it since.
type liveCollector struct {
	placements atomic.Pointer[iter.Seq[PlacementStatus]]
}

// ReadPlacements sets where the live series come from: the placements of
// the snapshot being served (none until it is set).
func (m *Metrics) ReadPlacements(placements iter.Seq[PlacementStatus]) {
	m.live.placements.Store(&placements)
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upstreamHealthyDesc
	ch <- circuitStateDesc
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	placements := c.placements.Load()
	if placements == nil {
		return
	}
	for p := range *placements {
		healthy := 0.0
		if p.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(upstreamHealthyDesc, prometheus.GaugeValue, healthy, p.Name)
		ch <- prometheus.MustNewConstMetric(circuitStateDesc, prometheus.GaugeValue, p.Circuit, p.Name)
	}
}
