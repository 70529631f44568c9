//! The explainability headers (contract §3) on every answer, the upstream's
//! and the router's own.

use std::time::Duration;

use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::Result;

use super::exchange::Exchange;
use crate::logs;
use crate::resilience::breaker::CircuitState;
use crate::routing::{FailoverReason, RouteReason};
use crate::snapshot::PlacementRuntime;

/// What the explainability headers (contract §3) say about one request;
/// `None` where it is not known (yet).
pub struct Explain<'a> {
    pub request_id: &'a HeaderValue,
    pub config_version: Option<&'a HeaderValue>,
    pub reason: Option<RouteReason>,
    pub failover: Option<FailoverReason>,
    pub serving: Option<&'a PlacementRuntime>,
    pub circuit: Option<CircuitState>,
    pub attempts: u32,
    /// The last attempt's time to its response head (or failure).
    pub upstream: Duration,
}

impl<'a> Explain<'a> {
    pub fn of(ex: &'a Exchange) -> Self {
        Explain {
            request_id: &ex.request_id,
            config_version: ex.snapshot.as_ref().and_then(|s| s.version_header.as_ref()),
            reason: ex.route_reason,
            failover: ex.failover,
            serving: ex.placement().map(|p| p.as_ref()),
            circuit: ex.circuit,
            attempts: ex.attempts.count(),
            upstream: ex.attempts.upstream_duration().unwrap_or_default(),
        }
    }
}

/// Adds the explainability headers to a response, upstream's or the router's.
/// Values are static or made once per snapshot (a `HeaderValue` clone shares
/// its bytes): a `&str` value would be copied and checked on every request.
pub fn add_explain_headers(resp: &mut ResponseHeader, e: &Explain<'_>) -> Result<()> {
    resp.insert_header("X-Request-Id", e.request_id.clone())?;
    resp.insert_header("X-Router", HeaderValue::from_static(logs::ROUTER))?;
    if let Some(version) = e.config_version {
        resp.insert_header("X-Config-Version", version.clone())?;
    }
    if let Some(reason) = e.reason {
        resp.insert_header("X-Route-Reason", HeaderValue::from_static(reason.as_str()))?;
    }
    if let Some(failover) = e.failover {
        resp.insert_header(
            "X-Failover-Reason",
            HeaderValue::from_static(failover.as_str()),
        )?;
    }
    if let Some(name) = e.serving.and_then(|p| p.name_header.as_ref()) {
        resp.insert_header("X-Routed-To", name.clone())?;
    }
    if let Some(circuit) = e.circuit {
        resp.insert_header(
            "X-Circuit-State",
            HeaderValue::from_static(circuit.as_str()),
        )?;
    }
    if e.attempts > 0 {
        resp.insert_header("X-Upstream-Attempts", attempts_value(e.attempts))?;
        // Milliseconds with three decimals, from integer microseconds: float
        // formatting is a measurable share of this hook's time.
        let us = e.upstream.as_micros();
        resp.insert_header(
            "Server-Timing",
            format!("upstream;dur={}.{:03}", us / 1000, us % 1000),
        )?;
    }
    Ok(())
}

/// Attempts are at most 5 (`max_attempts`): a static value, not a formatted one.
fn attempts_value(n: u32) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    DIGITS
        .get(n as usize)
        .map_or_else(|| HeaderValue::from(n), |d| HeaderValue::from_static(d))
}
