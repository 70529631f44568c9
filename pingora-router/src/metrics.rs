//! The contract's Prometheus series (§6), named, labelled and bucketed as in
//! the Go router. Routing keys are never labels.
//!
//! The request path uses pre-resolved handles ([`PlacementMetrics`], one
//! per placement, cached by the snapshot): counting a request is an atomic
//! add, with no label hashing after the first request of a (code, reason)
//! pair. Health and breaker state are not mirrored into gauges: like Go's
//! live collector they are read from the live snapshot at scrape time, so
//! the series always match the current placements and an open breaker whose
//! open period ran out shows half-open without a request touching it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::routing::RouteReason;

mod process;

/// Request-duration buckets: they resolve the sub-millisecond range of a
/// proxy on loopback, up to the longest default response-header timeout.
const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
    30.0,
];

/// Status codes with a pre-resolvable counter slot (anything else counts as 0).
const STATUS_SLOTS: usize = 600;
/// Reason slots: the three route reasons, then "refused before routing".
const REASON_SLOTS: usize = 4;
const UNROUTED: usize = 3;

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    config_info: IntGaugeVec,
    reloads: IntCounterVec,
    cp_connected: IntGauge,
    rate_limited: IntCounterVec,
    retries: IntCounterVec,
    placements: Mutex<HashMap<String, Arc<PlacementMetrics>>>,
    unrouted: Arc<PlacementMetrics>,
    /// Serialises `set_config_info`'s reset-then-set.
    config_info_lock: Mutex<()>,
}

/// The process's one registry, what `/metrics` renders. A static, not a
/// handle passed around: the request path never reads it (it counts through
/// the handles each snapshot resolves once, `PlacementRuntime::metrics` and
/// `Snapshot::unrouted`), and its other writers (config applies, the
/// control-plane gauge) are rare and live in different owners (the store,
/// the control-plane client) that would all have to carry it.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new(
            "cellbench_requests_total",
            "Requests answered, by placement, status code and route reason.",
        ),
        &["placement", "code", "route_reason"],
    )
    .expect("valid metric");
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "cellbench_request_duration_seconds",
            "Time from request arrival to the end of the response.",
        )
        .buckets(DURATION_BUCKETS.to_vec()),
        &["placement"],
    )
    .expect("valid metric");
    let config_info = IntGaugeVec::new(
        Opts::new(
            "cellbench_config_info",
            "The config snapshot being served (value 1).",
        ),
        &["version", "source"],
    )
    .expect("valid metric");
    let reloads = IntCounterVec::new(
        Opts::new(
            "cellbench_config_reloads_total",
            "Config documents applied or rejected.",
        ),
        &["result"],
    )
    .expect("valid metric");
    let cp_connected = IntGauge::new(
        "cellbench_control_plane_connected",
        "1 while connected to the control plane.",
    )
    .expect("valid metric");
    let rate_limited = IntCounterVec::new(
        Opts::new(
            "cellbench_rate_limited_total",
            "Requests refused by a placement's rate limit.",
        ),
        &["placement"],
    )
    .expect("valid metric");
    let retries = IntCounterVec::new(
        Opts::new(
            "cellbench_retries_total",
            "Upstream attempts after the first.",
        ),
        &["placement"],
    )
    .expect("valid metric");
    for collector in [
        Box::new(requests.clone()) as Box<dyn Collector>,
        Box::new(duration.clone()),
        Box::new(config_info.clone()),
        Box::new(reloads.clone()),
        Box::new(cp_connected.clone()),
        Box::new(rate_limited.clone()),
        Box::new(retries.clone()),
        Box::new(LiveUpstreams::new()),
        Box::new(LiveClients::new()),
        Box::new(process::ProcessCollector::new()),
    ] {
        registry
            .register(collector)
            .expect("metric names are unique");
    }
    // Both results exist from the start.
    reloads.with_label_values(&["applied"]);
    reloads.with_label_values(&["rejected"]);
    let unrouted = Arc::new(PlacementMetrics::unrouted(&requests));
    // An empty counter family is left out of the exposition, yet every
    // metric is exposed from the start: the series of a missing_routing_key
    // rejection (no placement, no route reason) exists at zero, as in Go.
    unrouted.counter(400, None);
    Metrics {
        registry,
        requests,
        duration,
        config_info,
        reloads,
        cp_connected,
        rate_limited,
        retries,
        placements: Mutex::new(HashMap::new()),
        unrouted,
        config_info_lock: Mutex::new(()),
    }
});

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One placement's series, resolved once.
pub struct PlacementMetrics {
    name: String,
    requests_vec: IntCounterVec,
    /// `None` for requests refused before routing (no placement to time).
    duration: Option<Histogram>,
    rate_limited: Option<IntCounter>,
    retries: Option<IntCounter>,
    /// `requests[reason][status]`, filled on first use; a reason's table is
    /// allocated when its first request comes (most placements only ever
    /// see one reason, and unused placements cost almost nothing).
    requests: [OnceLock<Box<[OnceLock<IntCounter>]>>; REASON_SLOTS],
}

impl PlacementMetrics {
    fn new(m: &Metrics, name: &str) -> PlacementMetrics {
        PlacementMetrics {
            name: name.to_owned(),
            requests_vec: m.requests.clone(),
            duration: Some(m.duration.with_label_values(&[name])),
            rate_limited: Some(m.rate_limited.with_label_values(&[name])),
            retries: Some(m.retries.with_label_values(&[name])),
            requests: Default::default(),
        }
    }

    fn unrouted(requests: &IntCounterVec) -> PlacementMetrics {
        PlacementMetrics {
            name: String::new(),
            requests_vec: requests.clone(),
            duration: None,
            rate_limited: None,
            retries: None,
            requests: Default::default(),
        }
    }

    /// Counts one answered request and its duration. `reason` is `None` for
    /// a request refused before routing.
    pub fn request(&self, status: u16, reason: Option<RouteReason>, elapsed: Duration) {
        self.counter(status, reason).inc();
        if let Some(duration) = &self.duration {
            duration.observe(elapsed.as_secs_f64());
        }
    }

    /// The requests_total series of one outcome, created on first use.
    fn counter(&self, status: u16, reason: Option<RouteReason>) -> &IntCounter {
        let reason_slot = reason.map_or(UNROUTED, |r| r as usize);
        let status = if usize::from(status) < STATUS_SLOTS {
            status
        } else {
            0
        };
        let table = self.requests[reason_slot]
            .get_or_init(|| (0..STATUS_SLOTS).map(|_| OnceLock::new()).collect());
        table[usize::from(status)].get_or_init(|| {
            let label = reason.map_or("", RouteReason::as_str);
            self.requests_vec
                .with_label_values(&[&self.name, &status.to_string(), label])
        })
    }

    /// Counts a request refused by this placement's rate limit.
    pub fn rate_limited(&self) {
        if let Some(c) = &self.rate_limited {
            c.inc();
        }
    }

    /// Counts an upstream attempt after the first.
    pub fn retry(&self) {
        if let Some(c) = &self.retries {
            c.inc();
        }
    }
}

/// The handle of a placement's series, creating them (at zero) on first
/// sight so that they exist before the first request. Call it when a
/// snapshot is built and keep the handle.
pub fn placement(name: &str) -> Arc<PlacementMetrics> {
    let m = &*METRICS;
    let mut placements = lock(&m.placements);
    Arc::clone(
        placements
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(PlacementMetrics::new(m, name))),
    )
}

/// The handle for requests refused before routing (placement and
/// route_reason labels empty, as in Go).
pub fn unrouted() -> Arc<PlacementMetrics> {
    Arc::clone(&METRICS.unrouted)
}

/// Counts an applied or a rejected config document.
pub fn record_config_reload(applied: bool) {
    METRICS
        .reloads
        .with_label_values(&[if applied { "applied" } else { "rejected" }])
        .inc();
}

/// Makes (version, source) the only `cellbench_config_info` series.
pub fn set_config_info(version: &str, source: &str) {
    let m = &*METRICS;
    let _serialised = lock(&m.config_info_lock);
    m.config_info.reset();
    m.config_info.with_label_values(&[version, source]).set(1);
}

pub fn set_control_plane_connected(connected: bool) {
    METRICS.cp_connected.set(i64::from(connected));
}

/// Health and breaker state of one placement, read at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamState {
    pub placement: String,
    pub healthy: bool,
    /// `closed`, `half_open` or `open`.
    pub circuit: String,
}

type UpstreamReader = Box<dyn Fn() -> Vec<UpstreamState> + Send + Sync>;

/// Installed once by the admin listener, read at scrape time by the
/// registry's collector, which prometheus requires to be `'static`.
static UPSTREAMS: OnceLock<UpstreamReader> = OnceLock::new();

/// Sets where `cellbench_upstream_healthy` and `cellbench_circuit_state`
/// are read from at scrape time (the admin listener installs its view).
/// The first reader installed stays.
pub fn read_upstreams_from(reader: impl Fn() -> Vec<UpstreamState> + Send + Sync + 'static) {
    let _ = UPSTREAMS.set(Box::new(reader));
}

/// 0 closed, 1 half-open, 2 open.
fn circuit_gauge_value(state: &str) -> i64 {
    match state {
        "half_open" => 1,
        "open" => 2,
        _ => 0,
    }
}

/// Builds the two live gauges from the installed reader at each collect.
struct LiveUpstreams {
    descs: Vec<Desc>,
}

impl LiveUpstreams {
    fn new() -> LiveUpstreams {
        let (healthy, circuit) = live_gauges();
        let descs = healthy
            .desc()
            .into_iter()
            .chain(circuit.desc())
            .cloned()
            .collect();
        LiveUpstreams { descs }
    }
}

fn live_gauges() -> (IntGaugeVec, IntGaugeVec) {
    let healthy = IntGaugeVec::new(
        Opts::new(
            "cellbench_upstream_healthy",
            "1 while the placement's health is healthy.",
        ),
        &["placement"],
    )
    .expect("valid metric");
    let circuit = IntGaugeVec::new(
        Opts::new(
            "cellbench_circuit_state",
            "Breaker state of the placement: 0 closed, 1 half-open, 2 open.",
        ),
        &["placement"],
    )
    .expect("valid metric");
    (healthy, circuit)
}

impl Collector for LiveUpstreams {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (healthy, circuit) = live_gauges();
        for state in UPSTREAMS.get().map(|read| read()).unwrap_or_default() {
            healthy
                .with_label_values(&[&state.placement])
                .set(i64::from(state.healthy));
            circuit
                .with_label_values(&[&state.placement])
                .set(circuit_gauge_value(&state.circuit));
        }
        healthy
            .collect()
            .into_iter()
            .chain(circuit.collect())
            .collect()
    }
}

type ClientReader = Box<dyn Fn() -> (usize, u64, u64) + Send + Sync>;

/// Installed once at start-up, read at scrape time (as `UPSTREAMS`).
static CLIENTS: OnceLock<ClientReader> = OnceLock::new();

/// Sets where the client connection series are read from at scrape time:
/// open connections, waiting ones shed at the cap, newcomers refused there
/// (`guard::Registry::stats`). Zeros until one is installed.
pub fn read_clients_from(reader: impl Fn() -> (usize, u64, u64) + Send + Sync + 'static) {
    let _ = CLIENTS.set(Box::new(reader));
}

/// `cellbench_client_connections` and
/// `cellbench_client_connections_dropped_total{reason}`, read at collect.
struct LiveClients {
    descs: Vec<Desc>,
}

impl LiveClients {
    fn new() -> LiveClients {
        let (open, dropped) = client_series();
        let descs = open
            .desc()
            .into_iter()
            .chain(dropped.desc())
            .cloned()
            .collect();
        LiveClients { descs }
    }
}

fn client_series() -> (IntGauge, IntCounterVec) {
    let open = IntGauge::new(
        "cellbench_client_connections",
        "Client connections open on the proxy listener.",
    )
    .expect("valid metric");
    let dropped = IntCounterVec::new(
        Opts::new(
            "cellbench_client_connections_dropped_total",
            "Client connections closed at --max-client-connections: shed (waiting for a head, to admit a newcomer) or refused (a newcomer while every connection was busy).",
        ),
        &["reason"],
    )
    .expect("valid metric");
    (open, dropped)
}

impl Collector for LiveClients {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (open, dropped) = client_series();
        let (n, shed, refused) = CLIENTS.get().map_or((0, 0, 0), |read| read());
        open.set(i64::try_from(n).unwrap_or(i64::MAX));
        dropped.with_label_values(&["shed"]).inc_by(shed);
        dropped.with_label_values(&["refused"]).inc_by(refused);
        open.collect()
            .into_iter()
            .chain(dropped.collect())
            .collect()
    }
}

/// The Prometheus text exposition of every series, and its content type.
pub fn render() -> (Vec<u8>, String) {
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 << 10);
    // Encoding gathered families into a Vec only fails on malformed families,
    // which the typed constructors above cannot produce.
    let _ = encoder.encode(&METRICS.registry.gather(), &mut body);
    (body, encoder.format_type().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> String {
        String::from_utf8(render().0).unwrap()
    }

    fn value_of(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    // One test: the registry is process-wide, so separate tests would race
    // on shared series.
    #[test]
    fn series_are_exposed_and_counted() {
        let pm = placement("m-tier1");
        set_config_info("v1", "file");
        record_config_reload(true);
        read_upstreams_from(|| {
            vec![UpstreamState {
                placement: "m-tier1".into(),
                healthy: false,
                circuit: "half_open".into(),
            }]
        });

        let text = scrape();
        for name in [
            "cellbench_requests_total{code=\"400\",placement=\"\",route_reason=\"\"} 0",
            "cellbench_request_duration_seconds_bucket{placement=\"m-tier1\",le=\"0.0005\"} 0",
            "cellbench_rate_limited_total{placement=\"m-tier1\"} 0",
            "cellbench_retries_total{placement=\"m-tier1\"} 0",
            "cellbench_config_reloads_total{result=\"rejected\"} 0",
            "cellbench_config_info{source=\"file\",version=\"v1\"} 1",
            // (its value is moved by the control-plane tests running in parallel)
            "cellbench_control_plane_connected ",
            "cellbench_upstream_healthy{placement=\"m-tier1\"} 0",
            "cellbench_circuit_state{placement=\"m-tier1\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(
            value_of(&text, "cellbench_config_reloads_total{result=\"applied\"}").unwrap() >= 1.0
        );

        pm.request(200, Some(RouteReason::Shared), Duration::from_millis(3));
        pm.request(200, Some(RouteReason::Shared), Duration::from_millis(3));
        pm.request(503, Some(RouteReason::Default), Duration::from_millis(1));
        pm.rate_limited();
        pm.retry();
        unrouted().request(400, None, Duration::from_micros(10));
        set_config_info("v2", "control_plane");

        let text = scrape();
        let count = |series: &str| {
            value_of(&text, series).unwrap_or_else(|| panic!("{series} missing in\n{text}"))
        };
        assert_eq!(count("cellbench_requests_total{code=\"200\",placement=\"m-tier1\",route_reason=\"shared\"}"), 2.0);
        assert_eq!(count("cellbench_requests_total{code=\"503\",placement=\"m-tier1\",route_reason=\"default\"}"), 1.0);
        assert_eq!(
            count("cellbench_requests_total{code=\"400\",placement=\"\",route_reason=\"\"}"),
            1.0
        );
        assert_eq!(
            count("cellbench_request_duration_seconds_count{placement=\"m-tier1\"}"),
            3.0
        );
        assert_eq!(
            count("cellbench_request_duration_seconds_bucket{placement=\"m-tier1\",le=\"0.0025\"}"),
            1.0
        );
        assert_eq!(
            count("cellbench_rate_limited_total{placement=\"m-tier1\"}"),
            1.0
        );
        assert_eq!(count("cellbench_retries_total{placement=\"m-tier1\"}"), 1.0);
        assert_eq!(
            count("cellbench_config_info{source=\"control_plane\",version=\"v2\"}"),
            1.0
        );
        assert!(
            !text.contains("version=\"v1\""),
            "the old config_info series must go"
        );
        // The same handle comes back for the same name.
        assert!(Arc::ptr_eq(&pm, &placement("m-tier1")));
    }
}
