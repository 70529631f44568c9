//! The router's pure decision logic (contract §2), as Go's
//! `go-router/routing`: which placement a routing key maps to and why, which
//! placement serves given each candidate's availability, and whether a
//! failed attempt may be retried. No I/O and no mutable state, so every
//! rule is a row in a table test.
//!
//! Placements are referred to by index into [`Table::names`], so the request
//! path never hashes a placement name: the snapshot keeps per-placement
//! runtime state in a `Vec` with the same indexes.

use std::collections::{HashMap, HashSet};

use http::Method;

use crate::config::{Config, Kind};

/// Why a request went to its primary placement (`X-Route-Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteReason {
    Default,
    Shared,
    Dedicated,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Default => "default",
            RouteReason::Shared => "shared",
            RouteReason::Dedicated => "dedicated",
        }
    }

    fn of_kind(kind: Kind) -> RouteReason {
        match kind {
            Kind::Shared => RouteReason::Shared,
            Kind::Dedicated => RouteReason::Dedicated,
        }
    }
}

/// Why the primary placement was skipped (`X-Failover-Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverReason {
    Unhealthy,
    CircuitOpen,
}

impl FailoverReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverReason::Unhealthy => "unhealthy",
            FailoverReason::CircuitOpen => "circuit_open",
        }
    }
}

/// Availability of one candidate placement at decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Available,
    Unhealthy,
    CircuitOpen,
}

/// A validated config compiled for lookups: placement names in a fixed
/// (sorted) order, routes resolved to indexes, and each placement's
/// candidate list precomputed.
#[derive(Debug, Clone)]
pub struct Table {
    names: Vec<String>,
    default: usize,
    routes: HashMap<String, (usize, RouteReason)>,
    /// `candidates[i]` is the visiting order when placement `i` is primary.
    candidates: Vec<Vec<usize>>,
}

impl Table {
    pub fn compile(config: &Config) -> Table {
        // BTreeMap keys are already sorted bytewise, as Go sorts them.
        let names: Vec<String> = config.placements.keys().cloned().collect();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let routes = config
            .routes
            .iter()
            .map(|(key, name)| {
                let i = index[name.as_str()];
                (
                    key.clone(),
                    (i, RouteReason::of_kind(config.placements[name].kind)),
                )
            })
            .collect();
        let candidates = names
            .iter()
            .map(|name| candidate_order(config, &index, name))
            .collect();
        Table {
            default: index[config.default_placement.as_str()],
            names,
            routes,
            candidates,
        }
    }

    /// The placement names; an index into this slice is a placement.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of `default_placement`.
    pub fn default_placement(&self) -> usize {
        self.default
    }

    /// Maps a routing key to its primary placement and the reason: a key in
    /// `routes` goes to its placement with the placement's kind as reason,
    /// any other key to `default_placement` with reason `default`. The caller
    /// answers 400 `missing_routing_key` for an empty key before routing.
    pub fn route(&self, key: &str) -> (usize, RouteReason) {
        self.routes
            .get(key)
            .copied()
            .unwrap_or((self.default, RouteReason::Default))
    }

    /// The visiting order when `primary` is the primary placement.
    pub fn candidates(&self, primary: usize) -> &[usize] {
        &self.candidates[primary]
    }
}

/// The primary, then its fallback chain, then the default placement, each at
/// most once (contract §2 rule 4).
fn candidate_order(config: &Config, index: &HashMap<&str, usize>, primary: &str) -> Vec<usize> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(primary);
    while let Some(name) = next.filter(|n| seen.insert(*n)) {
        order.push(index[name]);
        next = config.placements[name].fallback.as_deref();
    }
    if seen.insert(config.default_placement.as_str()) {
        order.push(index[config.default_placement.as_str()]);
    }
    order
}

/// Visits the candidates in order and picks the first available one.
/// `available` is called at most once per candidate, in order, and never
/// after the first available one: the caller's check takes a breaker permit,
/// so it must only be asked about the placement it will use.
///
/// Returns the serving placement (`None`: none is available) and why the
/// primary was skipped (`None` when it serves).
pub fn select(
    candidates: &[usize],
    mut available: impl FnMut(usize) -> Availability,
) -> (Option<usize>, Option<FailoverReason>) {
    let mut failover = None;
    for (i, &placement) in candidates.iter().enumerate() {
        let availability = available(placement);
        if i == 0 {
            failover = match availability {
                Availability::Available => None,
                Availability::Unhealthy => Some(FailoverReason::Unhealthy),
                Availability::CircuitOpen => Some(FailoverReason::CircuitOpen),
            };
        }
        if availability == Availability::Available {
            return (Some(placement), failover);
        }
    }
    (None, failover)
}

/// How one upstream attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head arrived whose status is not 502/503/504 (it may still
    /// be another 5xx).
    Response,
    /// A 502, 503 or 504 response head arrived.
    RetryableStatus,
    /// No connection could be made (refused, unreachable, connect timeout);
    /// nothing was sent.
    ConnectFailure,
    /// The response head did not arrive within the response-header timeout.
    Timeout,
    /// The connection failed after the request was sent (reset, closed
    /// without an answer).
    Broken,
}

impl Outcome {
    /// Classifies a received response head.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            502..=504 => Outcome::RetryableStatus,
            _ => Outcome::Response,
        }
    }
}

/// Whether the contract lets a request with this method be replayed after
/// the upstream may have seen it. RFC 9110 §9.2.2 also calls TRACE
/// idempotent; the contract's list leaves it out.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Whether an attempt that ended in `outcome` may be followed by another
/// (contract §2 rule 7). A connect failure sent nothing, so any method may be
/// retried as long as no body byte was consumed; anything the upstream may
/// have acted on is retried only for an idempotent method without a body. A
/// broken connection is treated like a 502 from the upstream.
pub fn may_retry(outcome: Outcome, method: &Method, has_body: bool, body_consumed: bool) -> bool {
    match outcome {
        Outcome::ConnectFailure => !body_consumed,
        Outcome::RetryableStatus | Outcome::Timeout | Outcome::Broken => {
            !has_body && is_idempotent(method)
        }
        Outcome::Response => false,
    }
}

/// Whether an attempt counts as a breaker failure (contract §2 rule 8): a
/// connect failure, a timeout or any 5xx. A broken connection counts like a
/// 5xx.
pub fn is_breaker_failure(outcome: Outcome, status: u16) -> bool {
    match outcome {
        Outcome::ConnectFailure | Outcome::Timeout | Outcome::Broken | Outcome::RetryableStatus => {
            true
        }
        Outcome::Response => status >= 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    /// a → b → c (chain), d dedicated with fallback a, default c.
    fn table() -> Table {
        let doc = br#"{
          "version": "t", "default_placement": "c",
          "routes": { "acme": "a", "visa": "d", "carol": "c" },
          "placements": {
            "a": { "kind": "shared", "endpoint": "http://h:1", "fallback": "b" },
            "b": { "kind": "shared", "endpoint": "http://h:2", "fallback": "c" },
            "c": { "kind": "shared", "endpoint": "http://h:3" },
            "d": { "kind": "dedicated", "endpoint": "http://h:4", "fallback": "a" },
            "e": { "kind": "shared", "endpoint": "http://h:5" }
          }
        }"#;
        Table::compile(&config::parse(doc).unwrap())
    }

    fn index(t: &Table, name: &str) -> usize {
        t.names().iter().position(|n| n == name).unwrap()
    }

    fn names(t: &Table, order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| t.names()[i].clone()).collect()
    }

    #[test]
    fn route_by_key() {
        let t = table();
        for (key, placement, reason) in [
            ("acme", "a", RouteReason::Shared),
            ("visa", "d", RouteReason::Dedicated),
            ("carol", "c", RouteReason::Shared),
            ("unknown", "c", RouteReason::Default),
            ("ACME", "c", RouteReason::Default), // keys are case-sensitive
            ("a", "c", RouteReason::Default),    // a placement name is not a key
        ] {
            let (p, r) = t.route(key);
            assert_eq!((t.names()[p].as_str(), r), (placement, reason), "key {key}");
        }
    }

    #[test]
    fn candidate_order_is_chain_then_default_each_once() {
        let t = table();
        for (primary, want) in [
            ("a", vec!["a", "b", "c"]),
            ("b", vec!["b", "c"]),
            ("c", vec!["c"]),
            ("d", vec!["d", "a", "b", "c"]),
            ("e", vec!["e", "c"]),
        ] {
            assert_eq!(
                names(&t, t.candidates(index(&t, primary))),
                want,
                "primary {primary}"
            );
        }
    }

    #[test]
    fn select_first_available_and_failover_reason_of_primary() {
        use Availability::*;
        let t = table();
        let d = t.candidates(index(&t, "d"));
        for (name, states, serving, failover) in [
            ("primary available", vec![Available], Some("d"), None),
            (
                "primary unhealthy",
                vec![Unhealthy, Available],
                Some("a"),
                Some(FailoverReason::Unhealthy),
            ),
            (
                "primary open",
                vec![CircuitOpen, Available],
                Some("a"),
                Some(FailoverReason::CircuitOpen),
            ),
            (
                "reason is the primary's, not later ones'",
                vec![CircuitOpen, Unhealthy, Unhealthy, Available],
                Some("c"),
                Some(FailoverReason::CircuitOpen),
            ),
            (
                "none available",
                vec![Unhealthy, CircuitOpen, Unhealthy, Unhealthy],
                None,
                Some(FailoverReason::Unhealthy),
            ),
        ] {
            let mut asked = Vec::new();
            let (got, reason) = select(d, |p| {
                asked.push(p);
                states[asked.len() - 1]
            });
            assert_eq!(got.map(|i| t.names()[i].as_str()), serving, "{name}");
            assert_eq!(reason, failover, "{name}");
            assert_eq!(
                asked.len(),
                states.len(),
                "{name}: asked about candidates after the one that serves"
            );
        }
    }

    #[test]
    fn retry_eligibility() {
        use Outcome::*;
        for (outcome, method, has_body, consumed, want) in [
            (ConnectFailure, Method::POST, true, false, true),
            (ConnectFailure, Method::POST, true, true, false),
            (ConnectFailure, Method::GET, false, false, true),
            (RetryableStatus, Method::GET, false, false, true),
            (RetryableStatus, Method::GET, true, true, false),
            (RetryableStatus, Method::POST, false, false, false),
            (RetryableStatus, Method::DELETE, false, false, true),
            (Timeout, Method::PUT, false, false, true),
            (Timeout, Method::PATCH, false, false, false),
            (Timeout, Method::TRACE, false, false, false),
            (Broken, Method::HEAD, false, false, true),
            (Broken, Method::OPTIONS, true, false, false),
            (Response, Method::GET, false, false, false),
        ] {
            assert_eq!(
                may_retry(outcome, &method, has_body, consumed),
                want,
                "{outcome:?} {method} body={has_body} consumed={consumed}"
            );
        }
    }

    #[test]
    fn outcome_of_status_and_breaker_failures() {
        assert_eq!(Outcome::of_status(502), Outcome::RetryableStatus);
        assert_eq!(Outcome::of_status(503), Outcome::RetryableStatus);
        assert_eq!(Outcome::of_status(504), Outcome::RetryableStatus);
        assert_eq!(Outcome::of_status(500), Outcome::Response);
        assert_eq!(Outcome::of_status(200), Outcome::Response);
        assert!(is_breaker_failure(Outcome::Response, 500));
        assert!(!is_breaker_failure(Outcome::Response, 404));
        assert!(!is_breaker_failure(Outcome::Response, 200));
        assert!(is_breaker_failure(Outcome::ConnectFailure, 0));
        assert!(is_breaker_failure(Outcome::Timeout, 0));
        assert!(is_breaker_failure(Outcome::Broken, 0));
        assert!(is_breaker_failure(Outcome::RetryableStatus, 503));
    }
}
