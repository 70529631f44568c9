//! The per-request state shared by the hooks (`Exchange`), and the request
//! id it carries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;

use super::attempts::Attempts;
use super::error::ErrorCode;
use crate::resilience::breaker::CircuitState;
use crate::resilience::concurrency::InflightGuard;
use crate::routing::{FailoverReason, RouteReason};
use crate::snapshot::{PlacementRuntime, Snapshot};

/// Longest client `X-Request-Id` passed on.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Requests being processed right now, all placements: the drain on shutdown
/// waits for this to reach zero. A static rather than a handle in `Router`:
/// each request would clone an `Arc` to hold it, and there is one process
/// and one drain.
static ACTIVE_REQUESTS: AtomicU64 = AtomicU64::new(0);

pub fn active_requests() -> u64 {
    ACTIVE_REQUESTS.load(Ordering::Acquire)
}

struct ActiveRequest;

impl ActiveRequest {
    fn enter() -> Self {
        ACTIVE_REQUESTS.fetch_add(1, Ordering::AcqRel);
        ActiveRequest
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        ACTIVE_REQUESTS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Request ids as a random per-process prefix plus a counter (the Go
/// router's scheme): unique across restarts without randomness per request.
pub struct RequestIds {
    prefix: String,
    seq: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std's RandomState is seeded from the OS's randomness; enough for a
        // non-secret, collision-avoiding prefix without another dependency.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        RequestIds {
            prefix: format!("{:016x}-", h.finish()),
            seq: AtomicU64::new(0),
        }
    }

    /// A header value from the start: it goes into two headers as is.
    pub fn next(&self) -> HeaderValue {
        let mut id = String::with_capacity(self.prefix.len() + 13);
        id.push_str(&self.prefix);
        push_base36(&mut id, self.seq.fetch_add(1, Ordering::Relaxed) + 1);
        HeaderValue::try_from(id).expect("hex and base36 digits are a header value")
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

fn push_base36(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ascii digits"));
}

/// 1 to 128 visible ASCII characters: safe in a header and a log line.
pub fn valid_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_BYTES
        && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Per-request state shared between the hooks.
pub struct Exchange {
    pub started: Instant,
    _active: ActiveRequest,
    pub snapshot: Option<Arc<Snapshot>>,
    /// Visible ASCII only (checked or generated), so also a `&str`.
    pub request_id: HeaderValue,
    pub routing_key: String,
    pub route_reason: Option<RouteReason>,
    pub primary: Option<usize>,
    pub serving: Option<usize>,
    pub failover: Option<FailoverReason>,
    /// The serving placement's breaker state that admitted the request (as
    /// the Go router reports it; the attempt's own outcome shows in the status).
    pub circuit: Option<CircuitState>,
    pub inflight: Option<InflightGuard>,
    pub attempts: Attempts,
    /// The router's error code when the router answered itself.
    pub error: Option<ErrorCode>,
}

impl Exchange {
    pub fn new() -> Self {
        Exchange {
            started: Instant::now(),
            _active: ActiveRequest::enter(),
            snapshot: None,
            request_id: HeaderValue::from_static(""),
            routing_key: String::new(),
            route_reason: None,
            primary: None,
            serving: None,
            failover: None,
            circuit: None,
            inflight: None,
            attempts: Attempts::default(),
            error: None,
        }
    }

    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The serving placement, once routed.
    pub fn placement(&self) -> Option<&Arc<PlacementRuntime>> {
        Some(&self.snapshot.as_ref()?.placements[self.serving?])
    }

    /// The placement the request is counted under: the serving one, else the
    /// primary (refused by its rate limit or for lack of an available
    /// placement); `None` when refused before routing.
    pub fn counted_placement(&self) -> Option<&Arc<PlacementRuntime>> {
        Some(&self.snapshot.as_ref()?.placements[self.serving.or(self.primary)?])
    }
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_prefix_and_base36_counter() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(a.len(), 18);
        assert!(a.ends_with("-1") && b.ends_with("-2"), "{a} {b}");
        let mut s = String::new();
        push_base36(&mut s, 36 * 36);
        assert_eq!(s, "100");
    }

    #[test]
    fn client_request_id_rules() {
        assert!(valid_request_id(b"abc-123"));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(b"has space"));
        assert!(!valid_request_id(&[b'a'; 129]));
        assert!(valid_request_id(&[b'a'; 128]));
    }
}
