package proxy

import "github.com/prometheus/client_golang/prometheus"

var (
	upstreamHealthyDesc = prometheus.NewDesc("cellbench_upstream_healthy",
		"1 while the placement's health is healthy.", []string{"placement"}, nil)
	circuitStateDesc = prometheus.NewDesc("cellbench_circuit_state",
		"Breaker state of the placement: 0 closed, 1 half-open, 2 open.", []string{"placement"}, nil)
)

// liveCollector reads health and breaker state at scrape time instead of
// mirroring it into gauges: the series always match the placements of the
// current snapshot, and a breaker whose open period ran out shows
// half-open even if no request has touched it since.
type liveCollector struct{ rt *Router }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upstreamHealthyDesc
	ch <- circuitStateDesc
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rt.current.Load()
	if s == nil {
		return
	}
	for _, p := range s.placements {
		healthy := 1.0
		if p.health.unhealthy.Load() {
			healthy = 0
		}
		ch <- prometheus.MustNewConstMetric(upstreamHealthyDesc, prometheus.GaugeValue, healthy, p.name)
		ch <- prometheus.MustNewConstMetric(circuitStateDesc, prometheus.GaugeValue, circuitGaugeValue(p.circuitState()), p.name)
	}
}

// circuitState is the breaker state, closed without a breaker.
func (p *placement) circuitState() string {
	if p.breaker == nil {
		return circuitClosed
	}
	return p.breaker.state()
}
