//! The routing decision of one request (contract §2 rules 2-6) on the live
//! snapshot: primary and reason, the primary's rate limit, the first
//! available candidate (health, breaker permit), then the serving
//! placement's concurrency and body limits. The rules themselves are
//! `routing`'s; this applies them to the placements' runtime state.

use std::sync::Arc;

use pingora::http::RequestHeader;

use super::admission::{body_framing, routing_key, wire_violation};
use super::error::{body_too_large_message, ErrorCode, Refusal};
use super::exchange::Exchange;
use crate::resilience::breaker::Permit;
use crate::resilience::rate_limit::RetryAfter;
use crate::routing::{self, Availability, FailoverReason, RouteReason};
use crate::snapshot::Snapshot;

/// Which placement serves a routing key, before any I/O.
pub struct Decision {
    pub primary: usize,
    pub reason: RouteReason,
    pub failover: Option<FailoverReason>,
    pub outcome: Verdict,
}

pub enum Verdict {
    /// `permit` is the serving placement's breaker permit for the first attempt.
    Serve {
        serving: usize,
        permit: Permit,
    },
    RateLimited(RetryAfter),
    NoAvailablePlacement,
}

pub fn decide(snapshot: &Snapshot, routing_key: &str) -> Decision {
    let (primary, reason) = snapshot.table.route(routing_key);
    let decision = |failover, outcome| Decision {
        primary,
        reason,
        failover,
        outcome,
    };
    if let Some(limiter) = &snapshot.placements[primary].rate_limit {
        if let Err(retry_after) = limiter.allow(routing_key) {
            return decision(None, Verdict::RateLimited(retry_after));
        }
    }
    let mut permit = None;
    let (serving, failover) = routing::select(snapshot.table.candidates(primary), |i| {
        let p = &snapshot.placements[i];
        if !p.health.is_healthy() {
            return Availability::Unhealthy;
        }
        match p.admit() {
            Some(admitted) => {
                permit = Some(admitted);
                Availability::Available
            }
            None => Availability::CircuitOpen,
        }
    });
    match (serving, permit) {
        (Some(serving), Some(permit)) => decision(failover, Verdict::Serve { serving, permit }),
        _ => decision(failover, Verdict::NoAvailablePlacement),
    }
}

/// Admits and routes one request: the wire rules, the routing key, the
/// decision, the serving placement's concurrency slot and its body limit by
/// `Content-Length`. Fills `ex` as far as it got; `Err` is the refusal to
/// answer.
pub fn route(
    ex: &mut Exchange,
    snapshot: &Arc<Snapshot>,
    req: &RequestHeader,
) -> Result<(), Refusal> {
    if let Some(refusal) = wire_violation(req) {
        return Err(refusal);
    }
    ex.routing_key = routing_key(req)?;
    let decision = decide(snapshot, &ex.routing_key);
    ex.primary = Some(decision.primary);
    ex.route_reason = Some(decision.reason);
    ex.failover = decision.failover;
    let (serving, permit) = match decision.outcome {
        Verdict::Serve { serving, permit } => (serving, permit),
        Verdict::RateLimited(retry_after) => {
            let primary = &snapshot.placements[decision.primary];
            primary.metrics.rate_limited();
            let message = format!("rate limit of placement {} exceeded", primary.name);
            return Err(Refusal::new(ErrorCode::RateLimited, message).retry_after(retry_after.0));
        }
        Verdict::NoAvailablePlacement => {
            return Err(Refusal::new(
                ErrorCode::NoAvailablePlacement,
                "no placement is available for this routing key",
            ))
        }
    };
    let p = &snapshot.placements[serving];
    ex.serving = Some(serving);
    ex.circuit = Some(p.circuit_state());
    let (has_body, content_length) = body_framing(req);
    ex.attempts.begin(permit, has_body);
    let Some(inflight) = p.inflight.try_enter(p.concurrency_limit) else {
        ex.attempts.abandon();
        let message = format!("concurrency limit of placement {} reached", p.name);
        return Err(Refusal::new(ErrorCode::ConcurrencyLimited, message).retry_after(1));
    };
    ex.inflight = Some(inflight);
    if let Some(length) = content_length {
        if p.max_request_body_bytes > 0 && length > p.max_request_body_bytes {
            ex.attempts.abandon();
            return Err(Refusal::new(
                ErrorCode::BodyTooLarge,
                body_too_large_message(p),
            ));
        }
    }
    Ok(())
}
