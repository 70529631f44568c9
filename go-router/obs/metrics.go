package obs

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"cellbench/go-router/engine"
	"cellbench/go-router/routing"
)

// durationBuckets resolve the sub-millisecond range a proxy on loopback
// lives in, up to the longest default response-header timeout.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30}

const (
	requestsTotalName = "cellbench_requests_total"
	requestsTotalHelp = "Requests answered, by placement, status code and route reason."
)

// Metrics are the contract's Prometheus series (section 6). Routing keys
// are never labels.
type Metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	configInfo  *prometheus.GaugeVec
	reloads     *prometheus.CounterVec
	cpConnected prometheus.Gauge
	rateLimited *prometheus.CounterVec
	retries     *prometheus.CounterVec
	live        liveCollector

	mu          sync.Mutex
	byPlacement map[string]*PlacementMetrics
	unrouted    *PlacementMetrics // requests refused before routing

	// clientStats reads the proxy listener's connection registry at scrape
	// time (go-router/guard); zeros until one is installed.
	clientStats atomic.Pointer[func() (open int, shed, refused int64)]
}

// ReadClientStats sets where the client connection series are read from:
// open connections, waiting ones shed at the cap, newcomers refused there.
func (m *Metrics) ReadClientStats(read func() (open int, shed, refused int64)) {
	m.clientStats.Store(&read)
}

func (m *Metrics) readClientStats() (open int, shed, refused int64) {
	if read := m.clientStats.Load(); read != nil {
		return (*read)()
	}
	return 0, 0, 0
}

// clientCollectors are the client connection series (contract §6).
func (m *Metrics) clientCollectors() []prometheus.Collector {
	dropped := func(reason string, pick func(shed, refused int64) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "cellbench_client_connections_dropped_total",
			Help:        "Client connections closed at --max-client-connections: shed (waiting for a head, to admit a newcomer) or refused (a newcomer while every connection was busy).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 {
			_, shed, refused := m.readClientStats()
			return float64(pick(shed, refused))
		})
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellbench_client_connections", Help: "Client connections open on the proxy listener.",
		}, func() float64 {
			open, _, _ := m.readClientStats()
			return float64(open)
		}),
		dropped("shed", func(shed, _ int64) int64 { return shed }),
		dropped("refused", func(_, refused int64) int64 { return refused }),
	}
}

// PlacementMetrics caches one placement's series so that the request path
// does no label hashing.
type PlacementMetrics struct {
	name        string
	vec         *prometheus.CounterVec
	duration    prometheus.Observer
	rateLimited prometheus.Counter
	retries     prometheus.Counter
	// requests[reason][status] is filled on first use; index noReason is
	// for requests refused before routing.
	requests [noReason + 1][600]atomic.Pointer[prometheus.Counter]
}

const noReason = routing.ReasonDedicated + 1

// NewMetrics makes the registry of a router on engine e.
func NewMetrics(e engine.Engine) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: requestsTotalName, Help: requestsTotalHelp,
		}, []string{"placement", "code", "route_reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cellbench_request_duration_seconds", Help: "Time from request arrival to the end of the response.", Buckets: durationBuckets,
		}, []string{"placement"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cellbench_config_info", Help: "The config snapshot being served (value 1).",
		}, []string{"version", "source"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellbench_config_reloads_total", Help: "Config documents applied or rejected.",
		}, []string{"result"}),
		cpConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellbench_control_plane_connected", Help: "1 while connected to the control plane.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellbench_rate_limited_total", Help: "Requests refused by a placement's rate limit.",
		}, []string{"placement"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellbench_retries_total", Help: "Upstream attempts after the first.",
		}, []string{"placement"}),
		byPlacement: make(map[string]*PlacementMetrics),
	}
	// Not a contract series: it tells the harness's two Go targets apart.
	routerInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cellbench_router_info", Help: "The router and the engine it runs on (value 1).",
		ConstLabels: prometheus.Labels{"router": engine.RouterName, "engine": string(e)},
	})
	routerInfo.Set(1)
	m.registry.MustRegister(m.requests, m.duration, m.configInfo, m.reloads, m.cpConnected, m.rateLimited, m.retries, &m.live, routerInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(m.clientCollectors()...)
	m.reloads.WithLabelValues("applied")
	m.reloads.WithLabelValues("rejected")
	m.unrouted = m.newPlacement("")
	// client_golang leaves out a family without series, yet every metric
	// is exposed from the start: the series of a missing_routing_key
	// rejection (no placement, no route reason) exists at zero.
	m.unrouted.counter(noReason, false, http.StatusBadRequest)
	return m
}

// Placement returns the series of a placement, creating them (at zero) on
// first sight so that every series exists before the first request.
func (m *Metrics) Placement(name string) *PlacementMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	pm, ok := m.byPlacement[name]
	if !ok {
		pm = m.newPlacement(name)
		m.byPlacement[name] = pm
	}
	return pm
}

// Unrouted are the series of requests refused before routing.
func (m *Metrics) Unrouted() *PlacementMetrics { return m.unrouted }

func (m *Metrics) newPlacement(name string) *PlacementMetrics {
	pm := &PlacementMetrics{name: name, vec: m.requests}
	if name != "" {
		pm.duration = m.duration.WithLabelValues(name)
		pm.rateLimited = m.rateLimited.WithLabelValues(name)
		pm.retries = m.retries.WithLabelValues(name)
	}
	return pm
}

// Request counts one answered request; routed tells whether reason is known.
func (pm *PlacementMetrics) Request(reason routing.Reason, routed bool, status int) {
	pm.counter(reason, routed, status).Inc()
}

// ObserveDuration records a request's time from arrival to the end of its
// response (not for Unrouted).
func (pm *PlacementMetrics) ObserveDuration(d time.Duration) { pm.duration.Observe(d.Seconds()) }

// RateLimited counts a request refused by the placement's rate limit.
func (pm *PlacementMetrics) RateLimited() { pm.rateLimited.Inc() }

// Retried counts an upstream attempt after the first.
func (pm *PlacementMetrics) Retried() { pm.retries.Inc() }

// counter returns the requests_total series of one outcome, creating it on
// first use.
func (pm *PlacementMetrics) counter(reason routing.Reason, routed bool, status int) prometheus.Counter {
	r := noReason
	if routed {
		r = reason
	}
	if status < 0 || status >= len(pm.requests[r]) {
		status = 0
	}
	slot := &pm.requests[r][status]
	c := slot.Load()
	if c == nil {
		label := ""
		if routed {
			label = reason.String()
		}
		counter := pm.vec.WithLabelValues(pm.name, strconv.Itoa(status), label)
		slot.Store(&counter)
		c = &counter
	}
	return *c
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ConfigApplied counts an applied document and makes version/source the
// only cellbench_config_info series.
func (m *Metrics) ConfigApplied(version, source string) {
	m.reloads.WithLabelValues("applied").Inc()
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(version, source).Set(1)
}

// ConfigRejected counts a rejected document.
func (m *Metrics) ConfigRejected() { m.reloads.WithLabelValues("rejected").Inc() }

// SetControlPlaneConnected updates cellbench_control_plane_connected.
func (m *Metrics) SetControlPlaneConnected(connected bool) {
	v := 0.0
	if connected {
		v = 1
	}
	m.cpConnected.Set(v)
}
