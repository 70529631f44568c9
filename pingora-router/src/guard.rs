//! Client-side protection (contract §5, "Client connections"): a whole-head
//! timeout, a keep-alive idle timeout, and a cap on client connections below
//! the descriptor limit, shedding the oldest connections that wait for a
//! head when the cap is reached, at most `--client-shed-rate` a second
//! ([`pace`]). (The request-body idle timeout is
//! Pingora's own per-read `read_timeout`, set per request in the proxy.)
//!
//! Why this exists: Pingora bounds each read of a request head separately
//! (its 60 s keep-alive timeout, per read), so a head sent one byte at a
//! time is never cut; and it keeps no count of client connections and has
//! no way to close one from outside its task (its `ConnectionFilter` only
//! sees the peer address of a new connection). So, the smallest mechanism
//! that does it:
//!
//! - [`GuardedApp`] wraps the proxy's `ServerApp`: every accepted stream is
//!   registered in a [`Registry`] and wrapped in a [`GuardedStream`];
//! - a [`GuardedStream`] fails its reads once the head or idle deadline of
//!   its connection has passed, or once the registry has shed it;
//! - the proxy's hooks mark the connection busy when a head was parsed and
//!   waiting again when its response is done ([`mark_busy`],
//!   [`mark_waiting`]); only waiting connections are ever shed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use pace::ShedPace;
use pingora::protocols::http::ServerSession;
use tokio::sync::Notify;

mod app;
mod pace;
mod stream;

pub use app::{AdmitFilter, GuardedApp};
pub use stream::GuardedStream;

/// Defaults (contract §5 says why these values).
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections closed at the cap per second, at most.
pub const DEFAULT_SHED_RATE: u32 = 2000;
/// Descriptors kept back from RLIMIT_NOFILE (listeners, files, logs,
/// probes, accepts in flight), as in the Go router.
pub const DESCRIPTOR_RESERVE: u64 = 64;

/// The client-side settings of the proxy listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
    /// Connections closed at the cap (shed or refused) per second; 0: no
    /// limit.
    pub shed_rate: u32,
}

/// The connection cap for a soft descriptor limit: every client connection
/// may need an upstream one beside it (nginx counts worker_connections on
/// both sides), so half of what is left after the reserve.
pub fn max_connections_for(nofile: u64) -> usize {
    const CEILING: u64 = 1 << 20;
    if nofile > 2 * CEILING + DESCRIPTOR_RESERVE {
        return CEILING as usize;
    }
    if nofile <= DESCRIPTOR_RESERVE + 2 {
        return 1;
    }
    ((nofile - DESCRIPTOR_RESERVE) / 2) as usize
}

/// Raises the soft descriptor limit to the hard one, as the Go runtime does
/// at start-up (so both routers derive their cap from the same number), and
/// returns the soft limit then in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// One registered connection: what the hooks and the registry share.
pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) accepted: Instant,
    /// A request of this connection is being handled.
    pub(super) busy: AtomicBool,
    /// Nanoseconds after `accepted` when the connection last started to
    /// wait for a head (0: since the accept).
    pub(super) waiting_since: AtomicU64,
    /// Nanoseconds after `accepted` of the first byte of the head being
    /// waited for; u64::MAX while none came.
    pub(super) head_started: AtomicU64,
    /// The next head is the connection's first (bounded from the accept).
    pub(super) first: AtomicBool,
    pub(super) shed: AtomicBool,
    pub(super) waker: AtomicWaker,
}

impl Entry {
    pub(super) fn since(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.accepted).as_nanos() as u64
    }
}

/// The client connections of the proxy listener.
pub struct Registry {
    pub(super) limits: ClientLimits,
    pub(super) next_id: AtomicU64,
    pub(super) conns: Mutex<HashMap<u64, Arc<Entry>>>,
    /// How many waiting connections a newcomer at the cap sheds: 1/64 of
    /// the cap, so the scan for the oldest stays O(1) per accept.
    batch: usize,
    /// The shed rate, spent a batch at a time. While it waits the accept
    /// loop holds the newcomer, and the next ones wait in the listen
    /// backlog (as with HAProxy's "rate-limit sessions").
    pace: ShedPace,
    /// Waiting connections closed to admit a newcomer.
    pub(super) shed: AtomicU64,
    /// Newcomers closed because every connection was busy.
    pub(super) refused: AtomicU64,
    /// Admitted in the accept loop ([`AdmitFilter`]), not yet handed to
    /// [`GuardedApp`]; keyed by peer address, unique among live connections.
    pub(super) pending: Mutex<HashMap<SocketAddr, Arc<Entry>>>,
    /// Shed connections whose descriptor is not closed yet, and the signal
    /// that one was.
    pub(super) closing: AtomicUsize,
    pub(super) closed: Notify,
}

impl Registry {
    pub fn new(limits: ClientLimits) -> Arc<Self> {
        let batch = (limits.max_connections / 64).max(1);
        Arc::new(Registry {
            limits,
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            batch,
            pace: ShedPace::new(limits.shed_rate, batch),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            closing: AtomicUsize::new(0),
            closed: Notify::new(),
        })
    }

    pub fn limits(&self) -> ClientLimits {
        self.limits
    }

    /// [`admit`](Self::admit) at the shed pace: at the cap it first waits
    /// for the batch's share of the rate, which is spent whether the batch
    /// sheds or the newcomer is refused, so the pace bounds both.
    pub(super) async fn admit_paced(&self) -> Option<Arc<Entry>> {
        if self.open() >= self.limits.max_connections {
            let wait = self.pace.reserve(Instant::now(), self.batch);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        self.admit()
    }

    /// Registers a new connection, shedding waiting ones first when the cap
    /// is reached; `None` when every connection has a request under way
    /// (then the newcomer goes, as with Envoy's max_connections).
    pub(super) fn admit(&self) -> Option<Arc<Entry>> {
        let entry = Arc::new(Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            accepted: Instant::now(),
            busy: AtomicBool::new(false),
            waiting_since: AtomicU64::new(0),
            head_started: AtomicU64::new(u64::MAX),
            first: AtomicBool::new(true),
            shed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let victims = {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            let mut victims = Vec::new();
            if conns.len() >= self.limits.max_connections {
                victims = oldest_waiting(&conns, self.batch);
                if victims.is_empty() {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                for v in &victims {
                    conns.remove(&v.id);
                }
            }
            conns.insert(entry.id, Arc::clone(&entry));
            victims
        };
        self.shed.fetch_add(victims.len() as u64, Ordering::Relaxed);
        self.closing.fetch_add(victims.len(), Ordering::AcqRel);
        for v in victims {
            v.shed.store(true, Ordering::Release);
            v.waker.wake();
        }
        Some(entry)
    }

    pub(super) fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// A connection's descriptor is about to close.
    pub(super) fn release(&self, entry: &Entry) {
        self.remove(entry.id);
        if entry.shed.load(Ordering::Acquire) {
            self.closing.fetch_sub(1, Ordering::AcqRel);
            self.closed.notify_waiters();
        }
    }

    /// Holds the accept loop while many shed connections still hold their
    /// descriptors: their tasks close them, and an accept loop that ran
    /// ahead of those tasks reached EMFILE under an attack (Pingora then
    /// sleeps 1 s before accepting again). Bounded, so a stuck task cannot
    /// stop accepting.
    pub(super) async fn wait_for_closing(&self) {
        let slack = (self.limits.max_connections / 8).max(8);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while self.closing.load(Ordering::Acquire) > slack {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.closing.load(Ordering::Acquire) <= slack {
                break;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                break;
            }
        }
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Open connections, connections shed and newcomers refused so far.
    pub fn stats(&self) -> (usize, u64, u64) {
        (
            self.open(),
            self.shed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

/// Up to `n` waiting connections, the longest waiting first.
fn oldest_waiting(conns: &HashMap<u64, Arc<Entry>>, n: usize) -> Vec<Arc<Entry>> {
    let now = Instant::now();
    let mut waiting: Vec<(Instant, &Arc<Entry>)> = conns
        .values()
        .filter(|e| !e.busy.load(Ordering::Acquire))
        .map(|e| {
            let since = e.accepted + Duration::from_nanos(e.waiting_since.load(Ordering::Relaxed));
            (since.min(now), e)
        })
        .collect();
    waiting.sort_by_key(|(since, _)| *since);
    waiting
        .into_iter()
        .take(n)
        .map(|(_, e)| Arc::clone(e))
        .collect()
}

fn entry_of(session: &ServerSession) -> Option<&Entry> {
    let stream = session.stream()?;
    stream
        .as_any()
        .downcast_ref::<GuardedStream>()
        .map(|g| &*g.entry)
}

/// A head was parsed: the connection is busy (never shed) until
/// [`mark_waiting`].
pub fn mark_busy(session: &ServerSession) {
    if let Some(e) = entry_of(session) {
        e.first.store(false, Ordering::Relaxed);
        e.busy.store(true, Ordering::Release);
    }
}

/// The response is done: the connection waits for its next head (idle
/// timeout for the first byte, then the head timeout).
pub fn mark_waiting(session: &ServerSession) {
    if let Some(e) = entry_of(session) {
        e.head_started.store(u64::MAX, Ordering::Relaxed);
        e.waiting_since
            .store(e.since(Instant::now()), Ordering::Relaxed);
        e.busy.store(false, Ordering::Release);
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::listeners::ConnectionFilter;

    #[test]
    fn cap_is_half_of_what_the_reserve_leaves() {
        assert_eq!(max_connections_for(1024), 480);
        assert_eq!(max_connections_for(20000), 9968);
        assert_eq!(max_connections_for(10), 1);
        assert_eq!(max_connections_for(u64::MAX), 1 << 20);
    }

    fn limits(max: usize) -> ClientLimits {
        ClientLimits {
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_connections: max,
            shed_rate: 0,
        }
    }

    #[test]
    fn at_the_cap_the_oldest_waiting_connection_is_shed_and_busy_ones_kept() {
        let reg = Registry::new(limits(3));
        let a = reg.admit().unwrap();
        let b = reg.admit().unwrap();
        let c = reg.admit().unwrap();
        a.busy.store(true, Ordering::Release); // a request under way
                                               // b waits since its accept, c since later
        c.waiting_since.store(1, Ordering::Relaxed);
        let d = reg.admit().unwrap();
        assert!(!a.shed.load(Ordering::Acquire));
        assert!(b.shed.load(Ordering::Acquire));
        assert!(!c.shed.load(Ordering::Acquire));
        assert_eq!(reg.open(), 3);
        c.busy.store(true, Ordering::Release);
        d.busy.store(true, Ordering::Release);
        assert!(
            reg.admit().is_none(),
            "nothing to shed: the newcomer is refused"
        );
    }

    #[tokio::test]
    async fn shed_connections_are_counted_until_their_descriptor_closes() {
        let reg = Registry::new(limits(2));
        let a = reg.admit().unwrap();
        let _b = reg.admit().unwrap();
        let _c = reg.admit().unwrap(); // sheds a, the longest waiting
        assert!(a.shed.load(Ordering::Acquire));
        assert_eq!(reg.closing.load(Ordering::Acquire), 1);
        assert_eq!(reg.stats(), (2, 1, 0));
        // Below the slack the accept loop does not wait.
        tokio::time::timeout(Duration::from_millis(50), reg.wait_for_closing())
            .await
            .expect("no wait below the slack");
        reg.release(&a);
        assert_eq!(reg.closing.load(Ordering::Acquire), 0);
        assert_eq!(reg.open(), 2);
    }

    #[tokio::test]
    async fn the_filter_admits_by_peer_address() {
        let reg = Registry::new(limits(1));
        let filter = AdmitFilter::new(Arc::clone(&reg));
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert!(filter.should_accept(Some(&peer)).await);
        assert!(reg.pending.lock().unwrap().contains_key(&peer));
        reg.pending
            .lock()
            .unwrap()
            .get(&peer)
            .unwrap()
            .busy
            .store(true, Ordering::Release);
        let other: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert!(
            !filter.should_accept(Some(&other)).await,
            "at the cap with every connection busy"
        );
        assert_eq!(reg.stats(), (1, 0, 1));
    }
}
