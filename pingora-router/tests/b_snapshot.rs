//! Snapshot store: carry-over of per-placement runtime state across config
//! swaps, rejections, and the admin views. Its own test binary: the store
//! updates process-global metrics that other unit tests assert on.

use std::sync::Arc;

use pingora_router::admin::AdminView;
use pingora_router::config_source::{ConfigSink, Source};
use pingora_router::resilience::breaker::CircuitState;
use pingora_router::snapshot::{PlacementRuntime, SnapshotStore};

fn doc(version: &str, p_endpoint: &str, rps: u32) -> Vec<u8> {
    format!(
        r#"{{"version":"{version}","default_placement":"q","routes":{{"k":"p"}},"placements":{{
          "p":{{"kind":"shared","endpoint":"{p_endpoint}","fallback":"q",
               "circuit_breaker":{{"failure_threshold":1,"open_ms":60000}},
               "health_check":{{"path":"/health","interval_ms":60000,"timeout_ms":100,"unhealthy_threshold":5,"healthy_threshold":1}},
               "rate_limit":{{"requests_per_second":{rps},"burst":1,"per":"placement"}}}},
          "q":{{"kind":"shared","endpoint":"http://127.0.0.1:9"}}}}}}"#
    )
    .into_bytes()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn p(store: &SnapshotStore) -> Arc<PlacementRuntime> {
    let snapshot = store.load();
    let i = snapshot
        .table
        .names()
        .iter()
        .position(|n| n == "p")
        .unwrap();
    Arc::clone(&snapshot.placements[i])
}

/// A store serving `doc("v1", "http://127.0.0.1:1", 5)` from the file.
fn store_v1(rt: &tokio::runtime::Runtime) -> Arc<SnapshotStore> {
    SnapshotStore::bootstrap(
        &doc("v1", "http://127.0.0.1:1", 5),
        Source::File,
        rt.handle().clone(),
    )
    .expect("valid")
}

#[test]
fn runtime_state_survives_a_swap_when_the_endpoint_is_unchanged() {
    let rt = runtime();
    let store = store_v1(&rt);
    let before = p(&store);
    before.admit().expect("closed breaker admits").record(false);
    assert_eq!(before.circuit_state(), CircuitState::Open);
    let _inflight = before.inflight.try_enter(0).unwrap();

    assert_eq!(
        store.apply(&doc("v2", "http://127.0.0.1:1", 5), Source::File),
        Ok("v2".to_owned())
    );
    let after = p(&store);
    assert_eq!(store.current_version(), "v2");
    assert!(!Arc::ptr_eq(&before, &after), "a new snapshot was built");
    assert_eq!(
        after.circuit_state(),
        CircuitState::Open,
        "breaker state carried over"
    );
    assert_eq!(after.inflight.get(), 1, "in-flight counter carried over");
    assert!(Arc::ptr_eq(&before.health, &after.health));
    assert!(Arc::ptr_eq(
        before.rate_limit.as_ref().unwrap(),
        after.rate_limit.as_ref().unwrap()
    ));

    // Changed rate-limit settings: a new limiter, the rest still carried.
    store
        .apply(&doc("v3", "http://127.0.0.1:1", 7), Source::File)
        .unwrap();
    let changed = p(&store);
    assert!(!Arc::ptr_eq(
        after.rate_limit.as_ref().unwrap(),
        changed.rate_limit.as_ref().unwrap()
    ));
    assert_eq!(changed.circuit_state(), CircuitState::Open);
}

#[test]
fn a_new_endpoint_starts_fresh() {
    let rt = runtime();
    let store = store_v1(&rt);
    let before = p(&store);
    before.admit().unwrap().record(false);
    store
        .apply(&doc("v2", "http://127.0.0.1:2", 5), Source::ControlPlane)
        .unwrap();
    let after = p(&store);
    assert_eq!(after.circuit_state(), CircuitState::Closed);
    assert!(!Arc::ptr_eq(&before.health, &after.health));
    assert_eq!(after.addr, Some("127.0.0.1:2".parse().unwrap()));
    assert_eq!(store.debug_config()["source"], "control_plane");
}

#[test]
fn new_breaker_settings_start_a_closed_breaker() {
    let rt = runtime();
    let store = store_v1(&rt);
    let before = p(&store);
    before.admit().unwrap().record(false);
    assert_eq!(before.circuit_state(), CircuitState::Open);
    let retuned = String::from_utf8(doc("v2", "http://127.0.0.1:1", 5))
        .unwrap()
        .replace(r#""open_ms":60000"#, r#""open_ms":30000"#);
    store.apply(retuned.as_bytes(), Source::File).unwrap();
    let after = p(&store);
    assert_eq!(after.circuit_state(), CircuitState::Closed);
    assert!(
        Arc::ptr_eq(&before.health, &after.health),
        "the rest carried"
    );
}

#[test]
fn a_rejected_document_keeps_the_live_snapshot_and_is_recorded() {
    let rt = runtime();
    let store = store_v1(&rt);
    let err = store
        .apply(br#"{"version":"bad","bogus":1}"#, Source::File)
        .unwrap_err();
    assert_eq!(err.code, "unknown_field");
    assert_eq!(store.current_version(), "v1");
    let dc = store.debug_config();
    assert_eq!(dc["version"], "v1");
    assert_eq!(dc["last_rejected"]["version"], "bad");
    assert!(dc["last_rejected"]["error"]
        .as_str()
        .unwrap()
        .starts_with("unknown_field"));
    let ups = store.debug_upstreams();
    assert_eq!(ups["placements"]["p"]["health"], "healthy");
    assert_eq!(ups["placements"]["p"]["circuit"], "closed");
    assert_eq!(ups["placements"]["q"]["endpoint"], "http://127.0.0.1:9");
}
