//! The end of a request: its metrics and its access-log record (contract §4).

use pingora::proxy::Session;

use super::error::ErrorCode;
use super::exchange::Exchange;
use crate::logs::{AccessLog, AccessRecord};
use crate::metrics;
use crate::routing::{FailoverReason, RouteReason};

/// Counts the request under its placement (else as unrouted) and writes its
/// access-log line when the log is on.
pub fn record(log: &AccessLog, session: &Session, ex: &Exchange) {
    let status = match session.response_written() {
        Some(resp) => resp.status.as_u16(),
        None if ex.error == Some(ErrorCode::ClientClosed) => ErrorCode::ClientClosed.status(),
        None => 0,
    };
    let duration = ex.started.elapsed();
    let counted = ex.counted_placement();
    match (counted, &ex.snapshot) {
        (Some(p), _) => p.metrics.request(status, ex.route_reason, duration),
        (None, Some(s)) => s.unrouted.request(status, ex.route_reason, duration),
        // Before request_filter loaded a snapshot (Pingora failed earlier).
        (None, None) => metrics::unrouted().request(status, ex.route_reason, duration),
    }
    if !log.enabled() {
        return;
    }
    let req = session.req_header();
    let upstream = ex
        .placement()
        .filter(|_| ex.attempts.count() > 0)
        .map(|p| p.endpoint.as_str());
    log.write(&AccessRecord {
        request_id: ex.request_id(),
        method: req.method.as_str(),
        path: req.uri.path(),
        routing_key: &ex.routing_key,
        placement: counted.map_or("", |p| p.name.as_str()),
        route_reason: ex.route_reason.map_or("", RouteReason::as_str),
        failover_reason: ex.failover.map_or("", FailoverReason::as_str),
        upstream: upstream.unwrap_or(""),
        status,
        attempts: ex.attempts.count(),
        error: ex.error.map_or("", ErrorCode::as_str),
        duration_ms: duration.as_secs_f64() * 1000.0,
        upstream_ms: ex
            .attempts
            .upstream_duration()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        bytes_out: session.body_bytes_sent() as u64,
        config_version: ex.snapshot.as_ref().map_or("", |s| s.version()),
    });
}
