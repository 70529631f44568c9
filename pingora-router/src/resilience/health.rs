//! Active health checks (contract §2 rule 9).
//!
//! The probe itself is Pingora's `HttpHealthCheck::check` (connect, `GET
//! <path>`, read the head, drain the body) with a validator that accepts any
//! 2xx. The scheduling is our own tokio task per placement rather than
//! `pingora-load-balancing`'s `LoadBalancer::update`/`run_health_check`
//! service, because:
//! - the health state must outlive config swaps when a placement's endpoint is
//!   unchanged, while a `LoadBalancer` is built per backend set;
//! - each placement has its own interval, timeout and thresholds, and a
//!   `LoadBalancer` health-check service has one frequency;
//! - the router needs an event (`health_changed`) with the placement name on
//!   every flip.
//!
//! Probes run on the control runtime, never on the request path; requests only
//! read an atomic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::lb::health_check::{HealthCheck as _, HttpHealthCheck};
use pingora::lb::Backend;
use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorType};

/// Health of one placement as requests see it. Starts healthy.
#[derive(Debug)]
pub struct HealthState {
    healthy: AtomicBool,
}

impl HealthState {
    pub fn new() -> Arc<Self> {
        Arc::new(HealthState {
            healthy: AtomicBool::new(true),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Back to healthy when a swap removes the placement's active check:
    /// without a check a placement is always healthy (contract §1).
    pub fn reset_healthy(&self) {
        self.set(true);
    }

    fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }
}

/// The `health_check` settings of a placement, in the units the task uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
}

/// Counts consecutive probe results and decides when health flips. Kept apart
/// from the task so the threshold rules are unit-tested without sockets.
#[derive(Debug)]
pub struct Thresholds {
    unhealthy_after: u32,
    healthy_after: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    pub fn new(unhealthy_after: u32, healthy_after: u32) -> Self {
        Thresholds {
            unhealthy_after,
            healthy_after,
            successes: 0,
            failures: 0,
        }
    }

    /// Feeds one probe result; returns the new health when it flips.
    pub fn observe(&mut self, currently_healthy: bool, success: bool) -> Option<bool> {
        if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (!currently_healthy && self.successes >= self.healthy_after).then_some(true)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (currently_healthy && self.failures >= self.unhealthy_after).then_some(false)
        }
    }
}

/// Called with the placement's new health on every flip.
pub type OnHealthChange = Arc<dyn Fn(bool) + Send + Sync>;

/// A running probe loop; dropping it stops the loop.
pub struct HealthChecker {
    task: tokio::task::JoinHandle<()>,
    settings: ProbeSettings,
}

impl HealthChecker {
    /// Starts probing `addr` on `runtime`. `host` is the endpoint's
    /// `host:port`, sent as the probe's `Host`.
    pub fn spawn(
        runtime: &tokio::runtime::Handle,
        addr: SocketAddr,
        host: &str,
        settings: ProbeSettings,
        state: Arc<HealthState>,
        on_change: OnHealthChange,
    ) -> HealthChecker {
        let probe = build_probe(host, &settings);
        let backend = Backend {
            addr: addr.into(),
            weight: 1,
            ext: Default::default(),
        };
        let (interval, timeout) = (settings.interval, settings.timeout);
        let mut thresholds =
            Thresholds::new(settings.unhealthy_threshold, settings.healthy_threshold);
        let task = runtime.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let success = matches!(
                    tokio::time::timeout(timeout, probe.check(&backend)).await,
                    Ok(Ok(()))
                );
                if let Some(healthy) = thresholds.observe(state.is_healthy(), success) {
                    state.set(healthy);
                    on_change(healthy);
                }
            }
        });
        HealthChecker { task, settings }
    }

    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn build_probe(host: &str, settings: &ProbeSettings) -> HttpHealthCheck {
    let mut probe = HttpHealthCheck::new(host, false);
    // Keep one connection across probes, as the Go router's client does: a
    // fresh connect every 100 ms costs the cell and the router for nothing.
    probe.reuse_connection = true;
    probe.req.set_uri(
        settings
            .path
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/")),
    );
    probe.peer_template = HttpPeer::new("0.0.0.0:1", false, String::new());
    probe.peer_template.options.connection_timeout = Some(settings.timeout);
    probe.peer_template.options.read_timeout = Some(settings.timeout);
    probe.peer_template.options.write_timeout = Some(settings.timeout);
    probe.validator = Some(Box::new(|resp| {
        if resp.status.is_success() {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::CustomCode("non 2xx health probe", resp.status.as_u16()),
                "health check",
            )
        }
    }));
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_consecutive_results() {
        let mut t = Thresholds::new(2, 3);
        assert_eq!(t.observe(true, false), None);
        assert_eq!(
            t.observe(true, true),
            None,
            "a success breaks the failure run"
        );
        assert_eq!(t.observe(true, false), None);
        assert_eq!(t.observe(true, false), Some(false));
        assert_eq!(t.observe(false, true), None);
        assert_eq!(t.observe(false, true), None);
        assert_eq!(
            t.observe(false, false),
            None,
            "a failure breaks the success run"
        );
        assert_eq!(t.observe(false, true), None);
        assert_eq!(t.observe(false, true), None);
        assert_eq!(t.observe(false, true), Some(true));
    }

    #[test]
    fn steady_results_do_not_repeat_flips() {
        let mut t = Thresholds::new(1, 1);
        assert_eq!(t.observe(true, true), None);
        assert_eq!(t.observe(true, false), Some(false));
        assert_eq!(t.observe(false, false), None);
    }
}
