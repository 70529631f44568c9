//! The shed pace (contract §5): at the cap, connections are closed (shed or
//! refused) at most `--client-shed-rate` a second, a batch at a time.
//!
//! A generic cell rate algorithm, the virtual-scheduling form of a token
//! bucket (what `golang.org/x/time/rate` gives the Go router): each closed
//! connection moves a theoretical arrival time on by `1 / rate`, and a batch
//! may start once that time is less than a burst (one batch) ahead of now.
//! Hand-written: the crates this project builds on have no waiting token
//! bucket (`pingora-limits` estimates rates; it does not schedule), and
//! the algorithm is these few lines.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct ShedPace {
    /// Time one closed connection costs; `None`: no limit.
    per_connection: Option<Duration>,
    /// How far ahead of now the schedule may run: one batch.
    burst: Duration,
    /// When the connections paced so far would have been closed at exactly
    /// the rate.
    scheduled_until: Mutex<Option<Instant>>,
}

impl ShedPace {
    /// A pace of `rate` connections a second (0: none) for batches of
    /// `batch`.
    pub(super) fn new(rate: u32, batch: usize) -> Self {
        let per_connection = (rate > 0).then(|| Duration::from_secs(1) / rate);
        ShedPace {
            per_connection,
            burst: per_connection.unwrap_or_default() * batch as u32,
            scheduled_until: Mutex::new(None),
        }
    }

    /// Books `n` closings at `now` and returns how long to wait before them.
    pub(super) fn reserve(&self, now: Instant, n: usize) -> Duration {
        let Some(per_connection) = self.per_connection else {
            return Duration::ZERO;
        };
        let mut until = self
            .scheduled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let start = until.map_or(now, |u| u.max(now));
        let end = start + per_connection * n as u32;
        *until = Some(end);
        end.saturating_duration_since(now + self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_of_one_batch_then_the_rate() {
        let pace = ShedPace::new(100, 2); // 10 ms a connection, batches of 2
        let t0 = Instant::now();
        assert_eq!(
            pace.reserve(t0, 2),
            Duration::ZERO,
            "the first batch at once"
        );
        assert_eq!(pace.reserve(t0, 2), 20 * MS, "the next one a batch later");
        assert_eq!(pace.reserve(t0, 2), 40 * MS);
        // Idle for a while: the schedule does not save up more than a burst.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pace.reserve(later, 2), Duration::ZERO);
        assert_eq!(pace.reserve(later, 2), 20 * MS);
    }

    #[test]
    fn rate_zero_never_waits() {
        let pace = ShedPace::new(0, 7);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(pace.reserve(t0, 7), Duration::ZERO);
        }
    }
}
