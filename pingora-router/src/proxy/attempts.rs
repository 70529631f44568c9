//! The attempt state machine of one request (contract §2 rules 7-8): how
//! many attempts went upstream, the breaker permit of the current one, what
//! the request body allows, and, for each way an attempt ends, its breaker
//! verdict and whether another attempt follows.
//!
//! Pingora drives the loop (`upstream_peer` per attempt, an error with
//! `retry` set to go round again); the hooks only report events here and
//! pass the answer on. The decisions themselves are `routing`'s.

use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use http::Method;

use crate::resilience::breaker::Permit;
use crate::routing::{self, Outcome};
use crate::snapshot::PlacementRuntime;
use crate::upstream_watch::HeadWatch;

/// The serving placement as the attempts see it.
pub trait AttemptTarget {
    fn max_attempts(&self) -> u32;
    /// A breaker permit for one more attempt; `None` while the circuit refuses.
    fn admit(&self) -> Option<Permit>;
    /// Counts a retry in the placement's metrics.
    fn retried(&self);
}

impl AttemptTarget for PlacementRuntime {
    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn admit(&self) -> Option<Permit> {
        PlacementRuntime::admit(self)
    }

    fn retried(&self) {
        self.metrics.retry();
    }
}

/// How an attempt failed once its connection was made, as Pingora reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyFailure {
    /// The client's side failed (its body, its connection), not the upstream.
    pub downstream: bool,
    /// A pooled upstream connection turned out to be closed before it took
    /// the request.
    pub stale_pooled_connection: bool,
    /// Pingora's per-read timeout fired.
    pub read_timed_out: bool,
}

/// The retry loop's state of one request.
#[derive(Default)]
pub struct Attempts {
    /// Attempts that went upstream (a replay on a fresh connection is not one).
    count: u32,
    /// The current attempt's breaker permit, while its outcome is not recorded.
    permit: Option<Permit>,
    has_body: bool,
    body_bytes: u64,
    body_too_large: bool,
    /// The next attempt replays the current one (a pooled connection turned
    /// out to be closed), so it is not counted.
    replay: bool,
    /// A 502/503/504 head was turned into a retry.
    status_retry: bool,
    /// A response head is on its way to the client: no more attempts.
    response_received: bool,
    /// When the current attempt started (connect included, as the Go
    /// router's round trip does).
    started: Option<Instant>,
    /// The last attempt: from its start to its response head or failure.
    last: Option<Duration>,
    /// The current attempt's response-head deadline.
    head_watch: Option<HeadWatch>,
    /// That deadline cut the attempt: a header timeout, not a broken
    /// connection.
    head_timed_out: bool,
}

impl Attempts {
    /// The first attempt's permit (from the routing decision) and whether the
    /// request has a body.
    pub fn begin(&mut self, permit: Permit, has_body: bool) {
        self.permit = Some(permit);
        self.has_body = has_body;
    }

    /// The request is refused before any attempt: the permit goes back.
    pub fn abandon(&mut self) {
        if let Some(permit) = self.permit.take() {
            permit.abandon();
        }
    }

    /// An attempt starts (`upstream_peer`).
    pub fn start(&mut self) {
        if !std::mem::take(&mut self.replay) {
            self.count += 1;
        }
        self.status_retry = false;
        self.started = Some(Instant::now());
    }

    /// The placement has no address: a failed dial, without a retry.
    pub fn unreachable(&mut self) {
        self.end_timer();
        self.record(false);
    }

    /// The attempt's connection is up; a bodiless request is sent with its
    /// head, so its response-head deadline starts now.
    pub fn connected(&mut self, fd: RawFd, header_timeout: Duration) {
        self.head_watch = HeadWatch::new(fd);
        if !self.has_body {
            self.request_sent(header_timeout);
        }
    }

    /// The whole request went upstream: the response-head deadline starts.
    pub fn request_sent(&mut self, header_timeout: Duration) {
        if let Some(w) = self.head_watch.as_mut() {
            w.start(header_timeout);
        }
    }

    /// A chunk of the request body; false once the body is over `limit`
    /// (0: no limit).
    pub fn body_chunk(&mut self, len: usize, limit: u64) -> bool {
        self.body_bytes += len as u64;
        if limit > 0 && self.body_bytes > limit {
            self.body_too_large = true;
        }
        !self.body_too_large
    }

    /// The connection could not be made; returns whether to retry.
    pub fn connect_failed(&mut self, target: &impl AttemptTarget, method: &Method) -> bool {
        self.end_timer();
        self.record(false);
        self.may_retry(target, Outcome::ConnectFailure, method)
    }

    /// The attempt failed after its connection was made; returns whether
    /// Pingora goes round again.
    pub fn proxy_failed(
        &mut self,
        target: &impl AttemptTarget,
        method: &Method,
        failure: ProxyFailure,
    ) -> bool {
        if !self.response_received && !self.status_retry {
            self.end_timer();
        }
        if let Some(mut w) = self.head_watch.take() {
            self.head_timed_out = w.disarm() && !self.response_received;
        }
        if self.body_too_large || failure.downstream {
            // Not the upstream's fault: no breaker verdict, no retry.
            self.abandon();
            return false;
        }
        if self.status_retry {
            // response_head already recorded the 5xx and took the next
            // attempt's permit.
            return true;
        }
        if self.response_received {
            // The response is already on its way to the client.
            return false;
        }
        // A head deadline that cut a pooled connection looks the same to
        // Pingora (closed before any answer): it is a timeout, not a replay.
        if failure.stale_pooled_connection && self.body_bytes == 0 && !self.head_timed_out {
            // The upstream closed a pooled connection before reading the
            // request: replay it on a fresh connection, same attempt.
            self.replay = true;
            return true;
        }
        self.record(false);
        let outcome = if self.head_timed_out || failure.read_timed_out {
            Outcome::Timeout
        } else {
            Outcome::Broken
        };
        let retry = self.may_retry(target, outcome, method);
        if retry {
            self.head_timed_out = false;
        }
        retry
    }

    /// A final response head arrived; returns whether it is turned into a
    /// retry (a 502/503/504 that may be retried) instead of being forwarded.
    pub fn response_head(
        &mut self,
        target: &impl AttemptTarget,
        method: &Method,
        status: u16,
    ) -> bool {
        self.end_timer();
        if let Some(w) = self.head_watch.as_mut() {
            w.disarm();
        }
        let outcome = Outcome::of_status(status);
        self.record(!routing::is_breaker_failure(outcome, status));
        if outcome == Outcome::RetryableStatus && self.may_retry(target, outcome, method) {
            self.status_retry = true;
            return true;
        }
        self.response_received = true;
        false
    }

    /// The request is done: an unrecorded permit goes back, the deadline stops.
    pub fn finish(&mut self) {
        self.abandon();
        self.head_watch = None;
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The last attempt's time to its response head or failure.
    pub fn upstream_duration(&self) -> Option<Duration> {
        self.last
    }

    pub fn body_too_large(&self) -> bool {
        self.body_too_large
    }

    /// The last attempt was cut by its response-head deadline.
    pub fn head_timed_out(&self) -> bool {
        self.head_timed_out
    }

    fn end_timer(&mut self) {
        self.last = self.started.map(|t| t.elapsed());
    }

    fn record(&mut self, success: bool) {
        if let Some(permit) = self.permit.take() {
            permit.record(success);
        }
    }

    /// Whether one more attempt may follow the current one; if so, its
    /// breaker permit is taken.
    fn may_retry(
        &mut self,
        target: &impl AttemptTarget,
        outcome: Outcome,
        method: &Method,
    ) -> bool {
        if self.count >= target.max_attempts()
            || !routing::may_retry(outcome, method, self.has_body, self.body_bytes > 0)
        {
            return false;
        }
        let Some(permit) = target.admit() else {
            return false;
        };
        self.permit = Some(permit);
        target.retried();
        true
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::resilience::breaker::{Breaker, CircuitState};

    /// A placement with a breaker that opens after `threshold` failures.
    struct Target {
        max_attempts: u32,
        breaker: Arc<Breaker>,
        retries: Cell<u32>,
    }

    impl Target {
        fn new(max_attempts: u32, threshold: u32) -> Self {
            Target {
                max_attempts,
                breaker: Arc::new(Breaker::new("p", threshold, Duration::from_secs(60))),
                retries: Cell::new(0),
            }
        }

        fn circuit(&self) -> CircuitState {
            self.breaker.state(Instant::now())
        }
    }

    impl AttemptTarget for Target {
        fn max_attempts(&self) -> u32 {
            self.max_attempts
        }
        fn admit(&self) -> Option<Permit> {
            self.breaker.admit()
        }
        fn retried(&self) {
            self.retries.set(self.retries.get() + 1);
        }
    }

    fn begun(target: &Target, has_body: bool) -> Attempts {
        let mut a = Attempts::default();
        a.begin(target.admit().expect("closed"), has_body);
        a.start();
        a
    }

    const BROKEN: ProxyFailure = ProxyFailure {
        downstream: false,
        stale_pooled_connection: false,
        read_timed_out: false,
    };

    #[test]
    fn connect_failures_are_retried_up_to_max_attempts() {
        let t = Target::new(3, 10);
        let mut a = begun(&t, false);
        assert!(a.connect_failed(&t, &Method::POST), "nothing was sent");
        a.start();
        assert!(a.connect_failed(&t, &Method::POST));
        a.start();
        assert!(!a.connect_failed(&t, &Method::POST), "third of three");
        assert_eq!((a.count(), t.retries.get()), (3, 2));
        assert!(a.upstream_duration().is_some());
    }

    #[test]
    fn a_consumed_body_stops_connect_retries() {
        let t = Target::new(3, 10);
        let mut a = begun(&t, true);
        assert!(a.body_chunk(10, 0));
        assert!(!a.connect_failed(&t, &Method::POST));
    }

    #[test]
    fn a_broken_connection_retries_only_idempotent_bodiless_requests() {
        let t = Target::new(2, 10);
        let mut a = begun(&t, false);
        assert!(a.proxy_failed(&t, &Method::GET, BROKEN));
        let mut a = begun(&t, false);
        assert!(!a.proxy_failed(&t, &Method::POST, BROKEN));
        let mut a = begun(&t, true);
        assert!(!a.proxy_failed(&t, &Method::PUT, BROKEN));
    }

    #[test]
    fn an_open_circuit_refuses_the_retry() {
        let t = Target::new(5, 1);
        let mut a = begun(&t, false);
        assert!(!a.connect_failed(&t, &Method::GET), "the failure opened it");
        assert_eq!(t.circuit(), CircuitState::Open);
        assert_eq!(t.retries.get(), 0);
    }

    #[test]
    fn a_stale_pooled_connection_is_replayed_as_the_same_attempt() {
        let t = Target::new(1, 1);
        let mut a = begun(&t, false);
        let stale = ProxyFailure {
            stale_pooled_connection: true,
            ..BROKEN
        };
        assert!(a.proxy_failed(&t, &Method::POST, stale), "replayed");
        a.start();
        assert_eq!(a.count(), 1);
        assert_eq!(t.circuit(), CircuitState::Closed, "no breaker verdict");
        assert!(!a.proxy_failed(&t, &Method::POST, BROKEN));
        assert_eq!(t.circuit(), CircuitState::Open);
    }

    #[test]
    fn a_retryable_status_retries_through_the_proxy_error() {
        let t = Target::new(2, 10);
        let mut a = begun(&t, false);
        assert!(a.response_head(&t, &Method::GET, 503));
        assert!(
            a.proxy_failed(&t, &Method::GET, BROKEN),
            "the error Pingora reports for the turned-around 503"
        );
        a.start();
        assert!(!a.response_head(&t, &Method::GET, 503), "no attempts left");
        assert!(
            !a.proxy_failed(&t, &Method::GET, BROKEN),
            "already answering"
        );
        assert_eq!((a.count(), t.retries.get()), (2, 1));
    }

    #[test]
    fn response_statuses_are_breaker_verdicts() {
        let t = Target::new(1, 1);
        let mut a = begun(&t, false);
        assert!(!a.response_head(&t, &Method::GET, 404));
        assert_eq!(t.circuit(), CircuitState::Closed);
        let mut a = begun(&t, false);
        assert!(!a.response_head(&t, &Method::GET, 500));
        assert_eq!(t.circuit(), CircuitState::Open, "any 5xx is a failure");
    }

    #[test]
    fn client_failures_and_large_bodies_give_the_permit_back() {
        let t = Target::new(3, 1);
        let client = ProxyFailure {
            downstream: true,
            ..BROKEN
        };
        let mut a = begun(&t, false);
        assert!(!a.proxy_failed(&t, &Method::GET, client));
        let mut a = begun(&t, true);
        assert!(!a.body_chunk(11, 10));
        assert!(a.body_too_large());
        assert!(!a.proxy_failed(&t, &Method::PUT, BROKEN));
        assert_eq!(t.circuit(), CircuitState::Closed, "no verdict either time");
    }

    #[test]
    fn an_unreachable_placement_is_a_failure() {
        let t = Target::new(3, 1);
        let mut a = begun(&t, false);
        a.unreachable();
        assert_eq!(t.circuit(), CircuitState::Open);
    }

    #[test]
    fn an_unrecorded_trial_is_abandoned_at_the_end() {
        let t = Target {
            breaker: Arc::new(Breaker::new("p", 1, Duration::ZERO)),
            ..Target::new(1, 1)
        };
        t.admit().unwrap().record(false);
        let mut a = begun(&t, false);
        assert!(t.admit().is_none(), "the trial is in flight");
        a.finish();
        assert!(t.admit().is_some(), "finish freed the trial");
    }
}
