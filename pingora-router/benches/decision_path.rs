//! The per-request decision path of the router, without sockets: route the
//! key, check the primary's rate limit, pick the first available candidate
//! (health, breaker permit), record the attempt with the breaker, and build
//! the explainability headers of the response.
//!
//! A plain `harness = false` bench (no criterion: one more dependency tree to
//! build on a shared 2-core box for a single loop). It reports the median of
//! several rounds in ns per request. Run: `cargo bench -p pingora-router`.

use std::hint::black_box;
use std::time::Instant;

use pingora::http::ResponseHeader;
use pingora_router::config_source::Source;
use pingora_router::proxy::{add_explain_headers, decide, Explain, Verdict};
use pingora_router::routing::{FailoverReason, RouteReason};
use pingora_router::snapshot::SnapshotStore;

const CONFIG: &str = r#"{
  "version": "bench-1",
  "default_placement": "tier3",
  "routes": { "acme": "tier1", "globex": "tier2", "visa": "visa" },
  "placements": {
    "tier1": { "kind": "shared", "endpoint": "http://127.0.0.1:9001", "fallback": "tier3",
               "circuit_breaker": { "failure_threshold": 5, "open_ms": 10000 },
               "rate_limit": { "requests_per_second": 1e12, "burst": 1000, "per": "routing_key" },
               "retry": { "max_attempts": 2 }, "concurrency_limit": 100 },
    "tier2": { "kind": "shared", "endpoint": "http://127.0.0.1:9002", "fallback": "tier3",
               "circuit_breaker": { "failure_threshold": 5, "open_ms": 10000 } },
    "tier3": { "kind": "shared", "endpoint": "http://127.0.0.1:9003" },
    "visa":  { "kind": "dedicated", "endpoint": "http://127.0.0.1:9004", "fallback": "tier3" }
  }
}"#;

const KEYS: [&str; 4] = ["acme", "globex", "visa", "someone-else"];
const ROUNDS: usize = 7;
const PER_ROUND: usize = 200_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SnapshotStore::bootstrap(CONFIG.as_bytes(), Source::File, runtime.handle().clone())
        .expect("bench config is valid");
    let snapshot = store.load();

    let explain = |resp: &mut ResponseHeader, decision: &Routed, serving: usize| {
        add_explain_headers(
            resp,
            &Explain {
                request_id: &http::HeaderValue::from_static("0123456789abcdef-1"),
                config_version: snapshot.version_header.as_ref(),
                reason: Some(decision.reason),
                failover: decision.failover,
                serving: Some(&*snapshot.placements[serving]),
                circuit: Some(snapshot.placements[serving].circuit_state()),
                attempts: 1,
                upstream: std::time::Duration::from_micros(1234),
            },
        )
        .unwrap();
    };
    let decide_and_record = |i: usize| {
        let decision = decide(&snapshot, black_box(KEYS[i % KEYS.len()]));
        let Verdict::Serve { serving, permit } = decision.outcome else {
            panic!("bench config always serves");
        };
        permit.record(true);
        let routed = Routed {
            reason: decision.reason,
            failover: decision.failover,
        };
        (routed, serving)
    };

    report("decide + breaker record", || {
        for i in 0..PER_ROUND {
            black_box(decide_and_record(i));
        }
    });
    let (fixed, serving) = decide_and_record(0);
    report("response header building", || {
        for _ in 0..PER_ROUND {
            let mut resp = ResponseHeader::build(200, Some(12)).unwrap();
            explain(&mut resp, &fixed, serving);
            black_box(resp);
        }
    });
    report("decision path (both)", || {
        for i in 0..PER_ROUND {
            let (decision, serving) = decide_and_record(i);
            let mut resp = ResponseHeader::build(200, Some(12)).unwrap();
            explain(&mut resp, &decision, serving);
            black_box(resp);
        }
    });
}

/// What the explain headers take from a decision.
struct Routed {
    reason: RouteReason,
    failover: Option<FailoverReason>,
}

/// Runs `round` ROUNDS times and prints the median ns per request.
fn report(name: &str, mut round: impl FnMut()) {
    let mut ns = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        round();
        ns.push(start.elapsed().as_nanos() as f64 / PER_ROUND as f64);
    }
    ns.sort_by(f64::total_cmp);
    println!(
        "{name}: median {:.0} ns/request (min {:.0}, max {:.0}; {ROUNDS} rounds of {PER_ROUND})",
        ns[ROUNDS / 2],
        ns[0],
        ns[ROUNDS - 1]
    );
}
