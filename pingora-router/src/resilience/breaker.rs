//! Per-placement circuit breaker (contract §2 rule 8).
//!
//! Hand-written rather than a crate: the contract fixes the exact semantics
//! (consecutive failures, a fixed open period, exactly one half-open trial at a
//! time, results of requests admitted in an earlier state ignored), and the
//! state must be readable for `X-Circuit-State`, `/debug/upstreams` and
//! metrics. Time is passed in by the caller so tests drive it directly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::logs;

/// The observable breaker state, named as in the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A state change, reported so the caller can emit `circuit_changed` and
/// update `cellbench_circuit_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: CircuitState,
    pub to: CircuitState,
}

/// How a request was let through: its result only counts in the state that
/// admitted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Closed,
    Trial,
}

#[derive(Debug)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

impl State {
    fn public(&self) -> CircuitState {
        match self {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

#[derive(Debug)]
struct Inner {
    failure_threshold: u32,
    open_for: Duration,
    state: State,
}

#[derive(Debug)]
pub struct Breaker {
    /// The placement it guards, for its `circuit_changed` events (a breaker
    /// is carried over by placement name, so the name never changes).
    placement: String,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(placement: &str, failure_threshold: u32, open_for: Duration) -> Self {
        Breaker {
            placement: placement.to_owned(),
            inner: Mutex::new(Inner {
                failure_threshold: failure_threshold.max(1),
                open_for,
                state: State::Closed {
                    consecutive_failures: 0,
                },
            }),
        }
    }

    /// Whether a config swap keeps this breaker: new settings are a new,
    /// closed breaker (contract §5).
    pub fn same_settings(&self, failure_threshold: u32, open_for: Duration) -> bool {
        let inner = self.lock();
        inner.failure_threshold == failure_threshold.max(1) && inner.open_for == open_for
    }

    /// The state as a request arriving at `now` would see it: an open breaker
    /// whose period has elapsed reports `half_open`.
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.lock().state {
            State::Open { until } if now >= until => CircuitState::HalfOpen,
            ref s => s.public(),
        }
    }

    /// Asks to send one request. `None` means the breaker refuses it.
    pub fn try_acquire(&self, now: Instant) -> (Option<Admission>, Option<Transition>) {
        let mut inner = self.lock();
        match inner.state {
            State::Closed { .. } => (Some(Admission::Closed), None),
            State::Open { until } if now >= until => {
                inner.state = State::HalfOpen {
                    trial_in_flight: true,
                };
                let t = Transition {
                    from: CircuitState::Open,
                    to: CircuitState::HalfOpen,
                };
                (Some(Admission::Trial), Some(t))
            }
            State::Open { .. } => (None, None),
            State::HalfOpen {
                trial_in_flight: false,
            } => {
                inner.state = State::HalfOpen {
                    trial_in_flight: true,
                };
                (Some(Admission::Trial), None)
            }
            State::HalfOpen {
                trial_in_flight: true,
            } => (None, None),
        }
    }

    /// Records the outcome of an admitted request.
    pub fn record(&self, admission: Admission, success: bool, now: Instant) -> Option<Transition> {
        let mut inner = self.lock();
        let from = inner.state.public();
        let open_until = now + inner.open_for;
        let threshold = inner.failure_threshold;
        match (&mut inner.state, admission) {
            (
                State::Closed {
                    consecutive_failures,
                },
                Admission::Closed,
            ) => {
                if success {
                    *consecutive_failures = 0;
                    return None;
                }
                *consecutive_failures += 1;
                if *consecutive_failures < threshold {
                    return None;
                }
                inner.state = State::Open { until: open_until };
            }
            (State::HalfOpen { .. }, Admission::Trial) => {
                inner.state = if success {
                    State::Closed {
                        consecutive_failures: 0,
                    }
                } else {
                    State::Open { until: open_until }
                };
            }
            // A result from a request admitted under an earlier state says
            // nothing about the current one.
            _ => return None,
        }
        Some(Transition {
            from,
            to: inner.state.public(),
        })
    }

    /// A trial that ended without an upstream verdict (client went away,
    /// router-side error) frees the half-open slot for the next request.
    pub fn abandon(&self, admission: Admission) {
        let mut inner = self.lock();
        if let (State::HalfOpen { trial_in_flight }, Admission::Trial) =
            (&mut inner.state, admission)
        {
            *trial_in_flight = false;
        }
    }

    /// Lets one attempt through, or `None` while the circuit refuses it.
    pub fn admit(self: &Arc<Self>) -> Option<Permit> {
        let (admission, transition) = self.try_acquire(Instant::now());
        self.announce(transition);
        admission.map(|admission| Permit {
            held: Some((Arc::clone(self), admission)),
        })
    }

    fn announce(&self, transition: Option<Transition>) {
        // The circuit gauge is read at scrape time from debug_upstreams.
        if let Some(t) = transition {
            logs::event(
                "circuit_changed",
                &[
                    ("placement", &self.placement),
                    ("from", t.from.as_str()),
                    ("to", t.to.as_str()),
                ],
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot panic; recover the data if one ever did.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One attempt let through by a breaker (or by a placement without one),
/// until its outcome is recorded. Dropped unrecorded, it is abandoned: a
/// half-open trial that got no upstream verdict frees its slot.
#[must_use]
#[derive(Debug)]
pub struct Permit {
    held: Option<(Arc<Breaker>, Admission)>,
}

impl Permit {
    /// The permit of a placement without a breaker: records nothing.
    pub fn unguarded() -> Permit {
        Permit { held: None }
    }

    /// Reports how the attempt ended: `success` is the breaker's verdict.
    pub fn record(mut self, success: bool) {
        if let Some((breaker, admission)) = self.held.take() {
            let transition = breaker.record(admission, success, Instant::now());
            breaker.announce(transition);
        }
    }

    /// Gives the permit back without a verdict (the attempt never reached
    /// the upstream, or its failure was not the upstream's).
    pub fn abandon(self) {}
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((breaker, admission)) = self.held.take() {
            breaker.abandon(admission);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Duration = Duration::from_millis(1000);

    fn fail(b: &Breaker, now: Instant) -> Option<Transition> {
        let (adm, _) = b.try_acquire(now);
        b.record(adm.expect("admitted"), false, now)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 3, OPEN);
        assert_eq!(fail(&b, t0), None);
        assert_eq!(fail(&b, t0), None);
        assert_eq!(
            fail(&b, t0),
            Some(Transition {
                from: CircuitState::Closed,
                to: CircuitState::Open
            })
        );
        assert_eq!(b.state(t0), CircuitState::Open);
        assert_eq!(b.try_acquire(t0 + Duration::from_millis(999)).0, None);
    }

    #[test]
    fn success_resets_consecutive_count() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 2, OPEN);
        fail(&b, t0);
        let (adm, _) = b.try_acquire(t0);
        assert_eq!(b.record(adm.unwrap(), true, t0), None);
        assert_eq!(fail(&b, t0), None, "count restarted after the success");
        assert_eq!(b.state(t0), CircuitState::Closed);
    }

    #[test]
    fn half_open_allows_one_trial_at_a_time() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 1, OPEN);
        fail(&b, t0);
        let later = t0 + OPEN;
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        let (first, t) = b.try_acquire(later);
        assert_eq!(first, Some(Admission::Trial));
        assert_eq!(
            t,
            Some(Transition {
                from: CircuitState::Open,
                to: CircuitState::HalfOpen
            })
        );
        assert_eq!(
            b.try_acquire(later).0,
            None,
            "second concurrent trial refused"
        );
        assert_eq!(
            b.record(Admission::Trial, true, later),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Closed
            })
        );
        assert_eq!(b.try_acquire(later).0, Some(Admission::Closed));
    }

    #[test]
    fn trial_failure_reopens_for_a_full_period() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 1, OPEN);
        fail(&b, t0);
        let t1 = t0 + OPEN;
        let (adm, _) = b.try_acquire(t1);
        assert_eq!(
            b.record(adm.unwrap(), false, t1),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Open
            })
        );
        assert_eq!(b.try_acquire(t1 + OPEN - Duration::from_millis(1)).0, None);
        assert_eq!(b.try_acquire(t1 + OPEN).0, Some(Admission::Trial));
    }

    #[test]
    fn abandoned_trial_frees_the_slot() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 1, OPEN);
        fail(&b, t0);
        let t1 = t0 + OPEN;
        let (adm, _) = b.try_acquire(t1);
        b.abandon(adm.unwrap());
        assert_eq!(b.try_acquire(t1).0, Some(Admission::Trial));
    }

    #[test]
    fn a_dropped_permit_is_abandoned() {
        let b = Arc::new(Breaker::new("p", 1, Duration::ZERO));
        b.admit().expect("closed").record(false);
        let trial = b.admit().expect("the open period is zero: a trial");
        assert!(b.admit().is_none(), "one trial at a time");
        drop(trial);
        let trial = b.admit().expect("the dropped trial freed the slot");
        trial.record(true);
        assert_eq!(b.state(Instant::now()), CircuitState::Closed);
    }

    #[test]
    fn stale_results_are_ignored() {
        let t0 = Instant::now();
        let b = Breaker::new("p", 1, OPEN);
        let (slow, _) = b.try_acquire(t0);
        fail(&b, t0);
        // The slow request admitted while closed finishes while open.
        assert_eq!(b.record(slow.unwrap(), true, t0), None);
        assert_eq!(b.state(t0), CircuitState::Open);
    }
}
