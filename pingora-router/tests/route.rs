//! The routing decision on a live snapshot (`proxy::route`): which refusal a
//! request gets, which placement serves it, and that a refused request gives
//! its breaker permit back. Its own test binary: building a snapshot updates
//! process-global metrics that the library's unit tests assert on.

use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora_router::config_source::Source;
use pingora_router::proxy::error::ErrorCode;
use pingora_router::proxy::exchange::Exchange;
use pingora_router::proxy::route::route;
use pingora_router::resilience::breaker::CircuitState;
use pingora_router::routing::{FailoverReason, RouteReason};
use pingora_router::snapshot::{Snapshot, SnapshotStore};

/// `a` (breaker, concurrency 1, 10-byte bodies) falls back to `d`;
/// `limited` admits one request per window; `d` is the default.
const CONFIG: &str = r#"{
  "version": "route-1",
  "default_placement": "d",
  "routes": { "ka": "a", "kl": "limited" },
  "placements": {
    "a": { "kind": "dedicated", "endpoint": "http://127.0.0.1:9001", "fallback": "d",
           "circuit_breaker": { "failure_threshold": 1, "open_ms": 60000 },
           "concurrency_limit": 1, "max_request_body_bytes": 10 },
    "limited": { "kind": "shared", "endpoint": "http://127.0.0.1:9002",
                 "rate_limit": { "requests_per_second": 0.001, "burst": 1, "per": "routing_key" } },
    "d": { "kind": "shared", "endpoint": "http://127.0.0.1:9003" }
  }
}"#;

fn snapshot() -> (tokio::runtime::Runtime, Arc<Snapshot>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SnapshotStore::bootstrap(CONFIG.as_bytes(), Source::File, runtime.handle().clone())
        .expect("valid config");
    let snapshot = store.load();
    (runtime, snapshot)
}

fn request(key: Option<&str>, content_length: Option<u64>) -> RequestHeader {
    let mut req = RequestHeader::build("POST", b"/x", None).unwrap();
    req.insert_header("host", "cell.example").unwrap();
    if let Some(key) = key {
        req.insert_header("x-routing-key", key).unwrap();
    }
    if let Some(n) = content_length {
        req.insert_header("content-length", n).unwrap();
    }
    req
}

fn index(s: &Snapshot, name: &str) -> usize {
    s.table.names().iter().position(|n| n == name).unwrap()
}

fn refusal(ex: &mut Exchange, s: &Arc<Snapshot>, req: &RequestHeader) -> Option<ErrorCode> {
    route(ex, s, req).err().map(|r| r.code)
}

#[test]
fn a_routed_key_is_served_by_its_placement() {
    let (_rt, s) = snapshot();
    let mut ex = Exchange::new();
    assert_eq!(refusal(&mut ex, &s, &request(Some("ka"), None)), None);
    assert_eq!(ex.serving, Some(index(&s, "a")));
    assert_eq!(ex.route_reason, Some(RouteReason::Dedicated));
    assert_eq!(ex.circuit, Some(CircuitState::Closed));
    assert!(ex.inflight.is_some());

    let mut other = Exchange::new();
    assert_eq!(refusal(&mut other, &s, &request(Some("zz"), None)), None);
    assert_eq!(other.serving, Some(index(&s, "d")));
    assert_eq!(other.route_reason, Some(RouteReason::Default));
}

#[test]
fn refusals_before_and_at_routing() {
    let (_rt, s) = snapshot();
    let mut ex = Exchange::new();
    assert_eq!(
        refusal(&mut ex, &s, &request(None, None)),
        Some(ErrorCode::MissingRoutingKey)
    );
    assert_eq!(ex.primary, None, "refused before routing");

    let mut first = Exchange::new();
    assert_eq!(refusal(&mut first, &s, &request(Some("kl"), None)), None);
    let mut second = Exchange::new();
    let limited = route(&mut second, &s, &request(Some("kl"), None)).unwrap_err();
    assert_eq!(limited.code, ErrorCode::RateLimited);
    assert!(limited.retry_after.is_some_and(|secs| secs >= 1));
    assert_eq!(
        (second.primary, second.serving),
        (Some(index(&s, "limited")), None)
    );
}

#[test]
fn the_serving_placement_limits_give_the_permit_back() {
    let (_rt, s) = snapshot();
    let a = &s.placements[index(&s, "a")];
    let mut held = Exchange::new();
    assert_eq!(refusal(&mut held, &s, &request(Some("ka"), None)), None);
    // The first request holds a's one concurrency slot and a permit.
    let mut second = Exchange::new();
    assert_eq!(
        refusal(&mut second, &s, &request(Some("ka"), None)),
        Some(ErrorCode::ConcurrencyLimited)
    );
    drop(held);
    let mut large = Exchange::new();
    assert_eq!(
        refusal(&mut large, &s, &request(Some("ka"), Some(11))),
        Some(ErrorCode::BodyTooLarge)
    );
    // Neither refusal left a verdict: one failure still opens the breaker.
    assert_eq!(a.circuit_state(), CircuitState::Closed);
    a.admit().expect("closed").record(false);
    assert_eq!(a.circuit_state(), CircuitState::Open);

    let mut failed_over = Exchange::new();
    assert_eq!(
        refusal(&mut failed_over, &s, &request(Some("ka"), None)),
        None
    );
    assert_eq!(failed_over.serving, Some(index(&s, "d")));
    assert_eq!(failed_over.failover, Some(FailoverReason::CircuitOpen));
}

#[test]
fn wire_rules_come_first() {
    let (_rt, s) = snapshot();
    let mut req = request(Some("ka"), None);
    req.append_header("host", "second.example").unwrap();
    let mut ex = Exchange::new();
    assert_eq!(refusal(&mut ex, &s, &req), Some(ErrorCode::BadRequest));
    assert_eq!(ex.primary, None);
}
