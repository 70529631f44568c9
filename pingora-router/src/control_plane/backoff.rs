//! Reconnect delays of the control-plane client.

use std::time::Duration;

/// Reconnect delays that double from `min` to `max`, each spread by ±20 %
/// so that a fleet that lost the control plane at the same moment does not
/// come back in lockstep. Hand-written (as in the Go client): a dozen lines,
/// and no backoff crate is in the build.
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

const BACKOFF_SPREAD: f64 = 0.2;

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// The delay before the next attempt, given `jitter` uniform in [0, 1);
    /// doubles the base.
    pub fn next(&mut self, jitter: f64) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let spread = 1.0 + BACKOFF_SPREAD * (2.0 * jitter - 1.0);
        base.mul_f64(spread).clamp(self.min, self.max)
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }
}
