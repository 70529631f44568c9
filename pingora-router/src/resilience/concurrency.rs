//! In-flight request counting and the per-placement concurrency limit
//! (contract §2 rule 5: over the limit is an immediate 503, no queueing).
//!
//! A plain atomic, not `pingora_limits::inflight::Inflight`: there is exactly
//! one counter per placement, so a count-min sketch would only add estimation
//! error, and `/debug/upstreams` needs the exact number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Inflight {
    count: AtomicU64,
}

impl Inflight {
    pub fn new() -> Arc<Self> {
        Arc::new(Inflight::default())
    }

    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts one request in, unless that would exceed `limit` (0 = no limit).
    /// The request stays counted until the guard is dropped.
    pub fn try_enter(self: &Arc<Self>, limit: u64) -> Option<InflightGuard> {
        let now = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if limit > 0 && now > limit {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InflightGuard {
            inflight: Arc::clone(self),
        })
    }
}

/// Releases the request's slot when the request ends, however it ends.
#[derive(Debug)]
pub struct InflightGuard {
    inflight: Arc<Inflight>,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.inflight.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_and_frees_on_drop() {
        let inflight = Inflight::new();
        let a = inflight.try_enter(2).expect("first");
        let b = inflight.try_enter(2).expect("second");
        assert!(inflight.try_enter(2).is_none(), "third is over the limit");
        assert_eq!(inflight.get(), 2, "a refused request is not counted");
        drop(a);
        let c = inflight.try_enter(2).expect("slot freed by drop");
        drop((b, c));
        assert_eq!(inflight.get(), 0);
    }

    #[test]
    fn zero_means_unlimited() {
        let inflight = Inflight::new();
        let guards: Vec<_> = (0..1000).map(|_| inflight.try_enter(0).unwrap()).collect();
        assert_eq!(inflight.get(), 1000);
        drop(guards);
        assert_eq!(inflight.get(), 0);
    }

    #[test]
    fn concurrent_entries_never_exceed_the_limit() {
        let inflight = Inflight::new();
        let admitted = std::sync::atomic::AtomicU64::new(0);
        let all_tried = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let held: Vec<_> = (0..100).filter_map(|_| inflight.try_enter(10)).collect();
                    admitted.fetch_add(held.len() as u64, Ordering::Relaxed);
                    // hold the guards until every thread has tried
                    all_tried.wait();
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 10);
        assert_eq!(inflight.get(), 0);
    }
}
