//! The live router state: the validated config of the moment plus the
//! per-placement runtime handles (resolved address, health, breaker, rate
//! limiter, in-flight counter) that requests use.
//!
//! A request loads one `Arc<Snapshot>` at its start and uses it to the end,
//! so it sees the old or the new config, never a mix (contract §5). A swap
//! carries a placement's health state, health checker, breaker and in-flight
//! counter over to the new snapshot when its endpoint did not change; its rate
//! limiter too when the rate-limit settings did not change.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::HeaderValue;
use serde_json::{json, Value};

use crate::config::{self, Config, ConfigError, Placement, RateLimitScope};
use crate::config_source::{ConfigSink, Source};
use crate::metrics::{self, PlacementMetrics};
use crate::resilience::breaker::{Breaker, CircuitState, Permit};
use crate::resilience::concurrency::Inflight;
use crate::resilience::health::{HealthChecker, HealthState, ProbeSettings};
use crate::resilience::rate_limit::{Per, RateLimiter};
use crate::routing::Table;
use crate::{admin, logs};

/// One placement as requests use it.
pub struct PlacementRuntime {
    pub name: String,
    /// `name` as the `X-Routed-To` value, made once, not per response.
    pub name_header: Option<HeaderValue>,
    pub endpoint: String,
    /// `None` when the endpoint's host name did not resolve when the snapshot
    /// was built: attempts then fail as connect failures.
    pub addr: Option<SocketAddr>,
    pub connect_timeout: Duration,
    pub response_header_timeout: Duration,
    pub response_body_idle_timeout: Duration,
    pub max_attempts: u32,
    /// 0 = no limit.
    pub concurrency_limit: u64,
    /// 0 = no limit.
    pub max_request_body_bytes: u64,
    pub health: Arc<HealthState>,
    pub breaker: Option<Arc<Breaker>>,
    pub rate_limit: Option<Arc<RateLimiter>>,
    pub inflight: Arc<Inflight>,
    /// This placement's metric series, resolved once per snapshot.
    pub metrics: Arc<PlacementMetrics>,
    /// Shared with the next snapshot when carried over; the probe loop stops
    /// when the last snapshot holding it is dropped.
    checker: Option<Arc<HealthChecker>>,
}

impl PlacementRuntime {
    pub fn circuit_state(&self) -> CircuitState {
        self.breaker
            .as_ref()
            .map_or(CircuitState::Closed, |b| b.state(Instant::now()))
    }

    /// Asks the breaker to let one attempt through; `None` while its
    /// circuit refuses. A placement without a breaker always admits.
    pub fn admit(&self) -> Option<Permit> {
        match &self.breaker {
            Some(breaker) => breaker.admit(),
            None => Some(Permit::unguarded()),
        }
    }
}

/// One validated config and the runtime handles built for it.
pub struct Snapshot {
    pub config: Config,
    pub source: Source,
    pub applied_at: String,
    /// The config compiled for lookups; its placement indexes index
    /// `placements`.
    pub table: Table,
    pub placements: Vec<Arc<PlacementRuntime>>,
    /// The version as the `X-Config-Version` value, made once, not per response.
    pub version_header: Option<HeaderValue>,
    /// The metric series of requests refused before routing.
    pub unrouted: Arc<PlacementMetrics>,
}

impl Snapshot {
    pub fn version(&self) -> &str {
        &self.config.version
    }
}

/// The store behind `ConfigSink` and `AdminView`: the live snapshot and the
/// bookkeeping of applies and rejections.
pub struct SnapshotStore {
    live: ArcSwap<Snapshot>,
    /// Where health checkers run (the control runtime, not the proxy's).
    control: tokio::runtime::Handle,
    /// Serialises applies from the file watcher, SIGHUP and the control plane,
    /// so that carry-over always starts from the snapshot being replaced.
    applying: Mutex<()>,
    last_rejected: Mutex<Value>,
}

impl SnapshotStore {
    /// Builds the first snapshot; a rejection here is a startup failure.
    pub fn bootstrap(
        doc: &[u8],
        source: Source,
        control: tokio::runtime::Handle,
    ) -> Result<Arc<SnapshotStore>, ConfigError> {
        let config = config::parse(doc)
            .inspect_err(|err| log_rejection(rejected_version(doc).as_deref(), err, source))?;
        let snapshot = build(config, source, None, &control);
        announce(&snapshot);
        Ok(Arc::new(SnapshotStore {
            live: ArcSwap::from_pointee(snapshot),
            control,
            applying: Mutex::new(()),
            last_rejected: Mutex::new(Value::Null),
        }))
    }

    /// The snapshot a new request uses.
    pub fn load(&self) -> Arc<Snapshot> {
        self.live.load_full()
    }

    fn reject(&self, doc: &[u8], err: &ConfigError, source: Source) {
        let version = rejected_version(doc);
        *lock(&self.last_rejected) = json!({
            "version": version,
            "error": err.to_string(),
            "at": logs::rfc3339_now(),
        });
        metrics::record_config_reload(false);
        log_rejection(version.as_deref(), err, source);
    }
}

impl ConfigSink for SnapshotStore {
    fn apply(&self, doc: &[u8], source: Source) -> Result<String, ConfigError> {
        let _serialised = lock(&self.applying);
        let config = match config::parse(doc) {
            Ok(config) => config,
            Err(err) => {
                self.reject(doc, &err, source);
                return Err(err);
            }
        };
        let previous = self.live.load_full();
        let snapshot = build(config, source, Some(&previous), &self.control);
        let version = snapshot.version().to_owned();
        announce(&snapshot);
        self.live.store(Arc::new(snapshot));
        Ok(version)
    }

    fn current_version(&self) -> String {
        self.live.load().version().to_owned()
    }
}

impl admin::AdminView for SnapshotStore {
    fn debug_config(&self) -> Value {
        let snapshot = self.live.load();
        json!({
            "version": snapshot.version(),
            "source": snapshot.source.as_str(),
            "applied_at": snapshot.applied_at,
            "last_rejected": lock(&self.last_rejected).clone(),
            "config": snapshot.config,
        })
    }

    fn debug_upstreams(&self) -> Value {
        let snapshot = self.live.load();
        let placements: serde_json::Map<String, Value> = snapshot
            .placements
            .iter()
            .map(|p| {
                let health = if p.health.is_healthy() {
                    "healthy"
                } else {
                    "unhealthy"
                };
                let body = json!({
                    "endpoint": p.endpoint,
                    "health": health,
                    "circuit": p.circuit_state().as_str(),
                    "inflight": p.inflight.get(),
                });
                (p.name.clone(), body)
            })
            .collect();
        json!({ "placements": placements })
    }
}

/// The version of a rejected document, when it has a readable one.
fn rejected_version(doc: &[u8]) -> Option<String> {
    let value = serde_json::from_slice::<Value>(doc).ok()?;
    value
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn log_rejection(version: Option<&str>, err: &ConfigError, source: Source) {
    logs::event(
        "config_rejected",
        &[
            ("version", version.unwrap_or("")),
            ("source", source.as_str()),
            ("code", err.code),
            ("error", &err.message),
        ],
    );
}

/// Records a successful apply: counters, the info gauge and the
/// `config_applied` event.
fn announce(snapshot: &Snapshot) {
    metrics::record_config_reload(true);
    metrics::set_config_info(snapshot.version(), snapshot.source.as_str());
    logs::event(
        "config_applied",
        &[
            ("version", snapshot.version()),
            ("source", snapshot.source.as_str()),
        ],
    );
}

/// Builds a snapshot, carrying runtime state over from `previous`.
fn build(
    config: Config,
    source: Source,
    previous: Option<&Snapshot>,
    control: &tokio::runtime::Handle,
) -> Snapshot {
    let old: HashMap<&str, &Arc<PlacementRuntime>> = previous
        .map(|s| s.placements.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    let table = Table::compile(&config);
    let placements = table
        .names()
        .iter()
        .map(|name| {
            let placement = &config.placements[name.as_str()];
            let carried = old
                .get(name.as_str())
                .filter(|p| p.endpoint == placement.endpoint);
            Arc::new(carry_over(name, placement, carried.copied(), control))
        })
        .collect();
    Snapshot {
        version_header: HeaderValue::from_str(&config.version).ok(),
        unrouted: metrics::unrouted(),
        config,
        source,
        applied_at: logs::rfc3339_now(),
        table,
        placements,
    }
}

/// The runtime state of placement `name` in a new snapshot, carrying over
/// from `carried` (the same placement in the snapshot being replaced) what
/// its settings let it keep.
fn carry_over(
    name: &str,
    p: &Placement,
    carried: Option<&Arc<PlacementRuntime>>,
    control: &tokio::runtime::Handle,
) -> PlacementRuntime {
    // Resolved once per endpoint; a name that did not resolve is tried again
    // at the next apply.
    let addr = carried.and_then(|old| old.addr).or_else(|| resolve(p));
    let health = carried.map_or_else(HealthState::new, |old| Arc::clone(&old.health));
    let checker = p.health_check.as_ref().zip(addr).map(|(hc, addr)| {
        let settings = ProbeSettings {
            path: hc.path.clone(),
            interval: Duration::from_millis(hc.interval_ms as u64),
            timeout: Duration::from_millis(hc.timeout_ms as u64),
            unhealthy_threshold: hc.unhealthy_threshold as u32,
            healthy_threshold: hc.healthy_threshold as u32,
        };
        let running = carried
            .and_then(|old| old.checker.as_ref())
            .filter(|c| *c.settings() == settings);
        match running {
            Some(checker) => Arc::clone(checker),
            None => {
                let (host, port) = p.endpoint_host_port();
                let authority = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let placement = name.to_owned();
                let on_change = Arc::new(move |healthy: bool| {
                    let (from, to) = if healthy {
                        ("unhealthy", "healthy")
                    } else {
                        ("healthy", "unhealthy")
                    };
                    logs::event(
                        "health_changed",
                        &[("placement", &placement), ("from", from), ("to", to)],
                    );
                });
                Arc::new(HealthChecker::spawn(
                    control,
                    addr,
                    &authority,
                    settings,
                    Arc::clone(&health),
                    on_change,
                ))
            }
        }
    });
    // Without an active check a placement is always healthy (contract §1).
    if checker.is_none() && !health.is_healthy() {
        health.reset_healthy();
    }
    let breaker = p.circuit_breaker.as_ref().map(|cb| {
        let open_for = Duration::from_millis(cb.open_ms as u64);
        let threshold = cb.failure_threshold as u32;
        carried
            .and_then(|old| old.breaker.as_ref())
            .filter(|b| b.same_settings(threshold, open_for))
            .map_or_else(
                || Arc::new(Breaker::new(name, threshold, open_for)),
                Arc::clone,
            )
    });
    let rate_limit = p.rate_limit.as_ref().map(|rl| {
        let per = match rl.per {
            RateLimitScope::RoutingKey => Per::RoutingKey,
            RateLimitScope::Placement => Per::Placement,
        };
        let existing = carried
            .and_then(|old| old.rate_limit.as_ref())
            .filter(|l| l.same_settings(rl.requests_per_second, rl.burst, per));
        existing.map_or_else(
            || Arc::new(RateLimiter::new(rl.requests_per_second, rl.burst, per)),
            Arc::clone,
        )
    });
    PlacementRuntime {
        name: name.to_owned(),
        name_header: HeaderValue::from_str(name).ok(),
        endpoint: p.endpoint.clone(),
        addr,
        connect_timeout: p.connect_timeout(),
        response_header_timeout: p.response_header_timeout(),
        response_body_idle_timeout: p.response_body_idle_timeout(),
        max_attempts: p.max_attempts(),
        concurrency_limit: p.concurrency_limit.max(0) as u64,
        max_request_body_bytes: p.max_request_body_bytes.max(0) as u64,
        health,
        breaker,
        rate_limit,
        inflight: carried.map_or_else(Inflight::new, |old| Arc::clone(&old.inflight)),
        metrics: metrics::placement(name),
        checker,
    }
}

/// Resolves the endpoint once, when the snapshot is built: Pingora's
/// `HttpPeer::new` would resolve a host name with blocking DNS on the request
/// path (and panic when it fails).
fn resolve(p: &Placement) -> Option<SocketAddr> {
    let (host, port) = p.endpoint_host_port();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
