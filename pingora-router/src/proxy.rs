//! The `ProxyHttp` implementation: the contract's request path (§2, §3) on
//! Pingora's hooks. Decisions come from `routing` (pure) and the placement
//! runtime handles in the snapshot; this file only wires them to the hooks:
//!
//! - `early_request_filter`: pipelining on;
//! - `request_filter`: wire rules, routing key, route, rate limit,
//!   availability (health, breaker), concurrency, body limit by
//!   `Content-Length` — each refusal is a JSON error the router writes itself;
//! - `upstream_peer`: one attempt to the serving placement's resolved address;
//! - `fail_to_connect` / `error_while_proxy` / `upstream_response_filter`:
//!   attempt outcomes (breaker) and the retry decision;
//! - `request_body_filter`: the body limit for bodies without a usable
//!   `Content-Length`;
//! - `upstream_request_filter` / `response_filter`: the §3 headers;
//! - `fail_to_proxy`: 502/504/413 as JSON; `logging`: access log and metrics.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::guard::{self, ClientLimits};
use crate::logs::{self, AccessRecord};
use crate::metrics;
use crate::resilience::breaker::{Admission, CircuitState};
use crate::resilience::concurrency::InflightGuard;
use crate::resilience::rate_limit::RetryAfter;
use crate::routing::{self, Availability, FailoverReason, Outcome, RouteReason};
use crate::snapshot::{PlacementRuntime, Snapshot, SnapshotStore};
use crate::upstream_watch::HeadWatch;

/// Largest request head (request line and header fields) accepted (contract
/// §2 wire rules). Pingora's own limit is 1 MiB, so the router checks this.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Status logged when the client left before an answer (nginx's 499, as
/// the Go router); never sent.
const STATUS_CLIENT_CLOSED: u16 = 499;

/// Longest client `X-Request-Id` passed on.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Upper bound on Pingora's retry loop. Attempts proper are counted and capped
/// by the router (`max_attempts` <= 5); the extra room is for replays on a
/// pooled upstream connection the upstream had already closed, which are not
/// attempts (the request never reached the upstream).
pub const MAX_PINGORA_RETRIES: usize = 8;

mod linger;

/// Requests being processed right now, all placements: the drain on shutdown
/// waits for this to reach zero.
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
struct RequestIds {
    prefix: String,
    seq: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
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
    fn next(&self) -> HeaderValue {
        let mut id = String::with_capacity(self.prefix.len() + 13);
        id.push_str(&self.prefix);
        push_base36(&mut id, self.seq.fetch_add(1, Ordering::Relaxed) + 1);
        HeaderValue::try_from(id).expect("hex and base36 digits are a header value")
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
fn valid_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_BYTES
        && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Per-request state shared between the hooks.
pub struct RequestCtx {
    started: Instant,
    _active: ActiveRequest,
    snapshot: Option<Arc<Snapshot>>,
    /// Visible ASCII only (checked or generated), so also a `&str`.
    request_id: HeaderValue,
    routing_key: String,
    route_reason: Option<RouteReason>,
    primary: Option<usize>,
    serving: Option<usize>,
    failover: Option<FailoverReason>,
    /// The serving placement's breaker state that admitted the request (as
    /// the Go router reports it; the attempt's own outcome shows in the status).
    circuit: Option<CircuitState>,
    _inflight: Option<InflightGuard>,
    /// The breaker permit of the current attempt, while its outcome is not
    /// yet recorded.
    admission: Option<Option<Admission>>,
    attempts: u32,
    has_body: bool,
    body_bytes: u64,
    body_too_large: bool,
    /// The next `upstream_peer` call replays the same attempt (a pooled
    /// connection turned out to be closed), so it is not a new attempt.
    replay: bool,
    /// `upstream_response_filter` turned a 502/503/504 into a retry.
    status_retry: bool,
    response_received: bool,
    /// When the current attempt started (connect included, as the Go
    /// router's round trip does).
    attempt_started: Option<Instant>,
    /// The last attempt: from its start to its response head or failure.
    upstream_dur: Option<Duration>,
    /// The router's error code when the router answered itself.
    error: Option<&'static str>,
    /// The current attempt's response-head deadline (upstream_watch).
    head_watch: Option<HeadWatch>,
    /// That deadline cut the attempt: a header timeout, not a broken
    /// connection.
    head_timed_out: bool,
}

impl RequestCtx {
    fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    fn placement(&self) -> Option<&Arc<PlacementRuntime>> {
        Some(&self.snapshot.as_ref()?.placements[self.serving?])
    }

    fn placement_name(&self, i: Option<usize>) -> &str {
        match (&self.snapshot, i) {
            (Some(s), Some(i)) => &s.placements[i].name,
            _ => "",
        }
    }

    fn end_attempt_timer(&mut self) {
        self.upstream_dur = self.attempt_started.map(|t| t.elapsed());
    }

    /// Records the current attempt's outcome with the breaker.
    fn record_attempt(&mut self, success: bool) {
        if let Some(admission) = self.admission.take() {
            if let Some(p) = self.placement() {
                p.record(admission, success);
            }
        }
    }

    /// Asks the breaker for the next attempt's permit.
    fn admit_next_attempt(&mut self) -> bool {
        let Some(p) = self.placement() else {
            return false;
        };
        match p.admit() {
            Ok(admission) => {
                self.admission = Some(admission);
                true
            }
            Err(_) => false,
        }
    }

    fn abandon_attempt(&mut self) {
        if let Some(admission) = self.admission.take() {
            if let Some(p) = self.placement() {
                p.abandon(admission);
            }
        }
    }
}

/// The router's `ProxyHttp` service.
pub struct Router {
    store: Arc<SnapshotStore>,
    ids: RequestIds,
    client: ClientLimits,
}

impl Router {
    pub fn new(store: Arc<SnapshotStore>) -> Self {
        Router {
            store,
            ids: RequestIds::new(),
            client: ClientLimits {
                head_timeout: guard::DEFAULT_HEAD_TIMEOUT,
                idle_timeout: guard::DEFAULT_IDLE_TIMEOUT,
                body_idle_timeout: guard::DEFAULT_BODY_IDLE_TIMEOUT,
                max_connections: usize::MAX,
            },
        }
    }

    /// The client-side settings (the request-body idle timeout is applied
    /// per request here; the rest by `guard` on the listener).
    pub fn with_client_limits(mut self, client: ClientLimits) -> Self {
        self.client = client;
        self
    }

    /// Whether one more attempt may follow the current one.
    fn may_retry(&self, ctx: &mut RequestCtx, outcome: Outcome, method: &Method) -> bool {
        let Some(p) = ctx.placement().cloned() else {
            return false;
        };
        let allowed = ctx.attempts < p.max_attempts
            && routing::may_retry(outcome, method, ctx.has_body, ctx.body_bytes > 0)
            && ctx.admit_next_attempt();
        if allowed {
            p.metrics.retry();
        }
        allowed
    }

    /// Writes a response the router makes itself: JSON body and the
    /// explainability headers known at this point.
    async fn respond(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        code: &'static str,
        message: &str,
        retry_after: Option<u64>,
    ) -> Result<()> {
        ctx.error = Some(code);
        let body = serde_json::json!({ "error": code, "message": message, "request_id": ctx.request_id() });
        let body = Bytes::from(body.to_string());
        let mut resp = ResponseHeader::build(status, Some(12))?;
        resp.insert_header(header::CONTENT_TYPE, "application/json")?;
        resp.insert_header(header::CONTENT_LENGTH, body.len())?;
        if let Some(secs) = retry_after {
            resp.insert_header(header::RETRY_AFTER, secs)?;
        }
        add_explain_headers(&mut resp, &Explain::of(ctx))?;
        if matches!(
            code,
            "bad_request"
                | "body_too_large"
                | "request_header_too_large"
                | "not_implemented"
                | "method_not_supported"
        ) {
            // The request's framing is broken or its body is not going to
            // be read: the connection cannot carry another request.
            session.set_keepalive(None);
        }
        let head_only = session.req_header().method == Method::HEAD;
        session
            .write_response_header(Box::new(resp), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(body), true).await?;
        }
        Ok(())
    }
}

/// What the explainability headers (contract §3) say about one request;
/// `None` where it is not known (yet).
pub struct Explain<'a> {
    pub request_id: &'a HeaderValue,
    pub config_version: Option<&'a HeaderValue>,
    pub reason: Option<RouteReason>,
    pub failover: Option<FailoverReason>,
    pub serving: Option<&'a PlacementRuntime>,
    pub circuit: Option<CircuitState>,
    pub attempts: u32,
    /// The last attempt's time to its response head (or failure).
    pub upstream: Duration,
}

impl<'a> Explain<'a> {
    fn of(ctx: &'a RequestCtx) -> Self {
        Explain {
            request_id: &ctx.request_id,
            config_version: ctx
                .snapshot
                .as_ref()
                .and_then(|s| s.version_header.as_ref()),
            reason: ctx.route_reason,
            failover: ctx.failover,
            serving: ctx.placement().map(|p| p.as_ref()),
            circuit: ctx.circuit,
            attempts: ctx.attempts,
            upstream: ctx.upstream_dur.unwrap_or_default(),
        }
    }
}

/// Adds the explainability headers to a response, upstream's or the router's.
/// Values are static or made once per snapshot (a `HeaderValue` clone shares
/// its bytes): a `&str` value would be copied and checked on every request.
pub fn add_explain_headers(resp: &mut ResponseHeader, e: &Explain<'_>) -> Result<()> {
    resp.insert_header("X-Request-Id", e.request_id.clone())?;
    resp.insert_header("X-Router", HeaderValue::from_static(logs::ROUTER))?;
    if let Some(version) = e.config_version {
        resp.insert_header("X-Config-Version", version.clone())?;
    }
    if let Some(reason) = e.reason {
        resp.insert_header("X-Route-Reason", HeaderValue::from_static(reason.as_str()))?;
    }
    if let Some(failover) = e.failover {
        resp.insert_header(
            "X-Failover-Reason",
            HeaderValue::from_static(failover.as_str()),
        )?;
    }
    if let Some(name) = e.serving.and_then(|p| p.name_header.as_ref()) {
        resp.insert_header("X-Routed-To", name.clone())?;
    }
    if let Some(circuit) = e.circuit {
        resp.insert_header(
            "X-Circuit-State",
            HeaderValue::from_static(circuit.as_str()),
        )?;
    }
    if e.attempts > 0 {
        resp.insert_header("X-Upstream-Attempts", attempts_value(e.attempts))?;
        // Milliseconds with three decimals, from integer microseconds: float
        // formatting is a measurable share of this hook's time.
        let us = e.upstream.as_micros();
        resp.insert_header(
            "Server-Timing",
            format!("upstream;dur={}.{:03}", us / 1000, us % 1000),
        )?;
    }
    Ok(())
}

/// Attempts are at most 5 (`max_attempts`): a static value, not a formatted one.
fn attempts_value(n: u32) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    DIGITS
        .get(n as usize)
        .map_or_else(|| HeaderValue::from(n), |d| HeaderValue::from_static(d))
}

fn body_too_large_message(p: &PlacementRuntime) -> String {
    format!(
        "request body is larger than the {} bytes placement {} accepts",
        p.max_request_body_bytes, p.name
    )
}

/// A request the router refuses before routing because of how it is framed
/// (contract §2 wire rules, RFC 9112). What Pingora's parser already
/// refuses (invalid or conflicting `Content-Length`, a non-chunked final
/// coding, malformed lines) never reaches the hooks.
struct WireViolation {
    status: u16,
    code: &'static str,
    message: String,
}

fn wire_violation(req: &RequestHeader) -> Option<WireViolation> {
    let violation = |status, code, message: &str| {
        Some(WireViolation {
            status,
            code,
            message: message.to_owned(),
        })
    };
    if request_head_bytes(req) > MAX_REQUEST_HEAD_BYTES {
        let message = format!("request head is larger than {MAX_REQUEST_HEAD_BYTES} bytes");
        return Some(WireViolation {
            status: 431,
            code: "request_header_too_large",
            message,
        });
    }
    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; none has two.
    let hosts = req.headers.get_all(header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && req.version == http::Version::HTTP_11) {
        return violation(
            400,
            "bad_request",
            "the request must carry exactly one Host header",
        );
    }
    // RFC 9112 §3.2: a Host with an invalid value gets 400 too.
    if req
        .headers
        .get_all(header::HOST)
        .iter()
        .any(|h| !h.as_bytes().iter().all(|b| valid_host_byte(*b)))
    {
        return violation(400, "bad_request", "the Host header is not a valid host");
    }
    // RFC 9110 §8.6: Content-Length is 1*DIGIT. Pingora's parser takes a list
    // of equal values ("5, 5") but the field would go upstream as it came:
    // refused, as every line must be one number and all lines the same.
    let mut lengths = req.headers.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let first = first.as_bytes().trim_ascii();
        let number = |v: &[u8]| !v.is_empty() && v.iter().all(u8::is_ascii_digit);
        if !number(first) || lengths.any(|v| v.as_bytes().trim_ascii() != first) {
            return violation(400, "bad_request", "the Content-Length is not one number");
        }
    }
    // RFC 9112 §3.2: origin-form, absolute-form, or `*` for OPTIONS. CONNECT
    // (authority-form) asks for a tunnel this reverse proxy does not offer.
    if req.method == Method::CONNECT {
        return violation(
            501,
            "method_not_supported",
            "CONNECT is not supported by this reverse proxy",
        );
    }
    let target = req.raw_path();
    let origin_form = target.starts_with(b"/");
    let asterisk = target == b"*" && req.method == Method::OPTIONS;
    // Pingora's parser keeps an absolute-form target verbatim (its authority
    // checked against Host) and leaves scheme and authority off the Uri.
    let absolute_form = is_absolute_form(target);
    // Only URI characters (RFC 3986): Pingora's parser escapes control
    // bytes, but passes other bytes over 0x7e on as they came.
    if target.iter().any(|b| *b <= b' ' || *b >= 0x7f) {
        return violation(
            400,
            "bad_request",
            "the request target has bytes that are not URI characters",
        );
    }
    if !(origin_form || asterisk || absolute_form) {
        return violation(
            400,
            "bad_request",
            "the request target must be an absolute path",
        );
    }
    // RFC 9112 §6.1, §7: the body is re-framed for the upstream, so the only
    // coding the router can take is a single, final `chunked`.
    let mut codings = req
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|c| c.trim_ascii())
        .filter(|c| !c.is_empty());
    if let Some(first) = codings.next() {
        if !first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some() {
            return violation(
                501,
                "not_implemented",
                "the only transfer coding accepted is a single chunked",
            );
        }
    }
    None
}

/// An absolute-form request target (RFC 9112 §3.2.2) of an http(s) URI.
fn is_absolute_form(target: &[u8]) -> bool {
    let starts = |prefix: &[u8]| {
        target.len() > prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    starts(b"http://") || starts(b"https://")
}

/// The bytes a Host value may hold: those of uri-host and port (RFC 9112
/// §3.2), as loosely as net/http checks them (httpguts.ValidHostHeader).
fn valid_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!$%&'()*+,-.:;=[]_~".contains(&b)
}

/// Size of the request head as it came in: request line and header fields.
fn request_head_bytes(req: &RequestHeader) -> usize {
    let line = req.method.as_str().len() + 1 + req.raw_path().len() + 1 + "HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
        .sum();
    line + fields + 2
}

/// Request fields a proxy must not forward (RFC 9110 §7.6.1), beyond those
/// Pingora's upstream request policy already strips. Names, not `&str`s: a
/// `&str` is parsed into a name again on every removal.
static HOP_BY_HOP_REQUEST: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
];

/// Response fields a proxy must not forward (RFC 9110 §7.6.1). Framing
/// (`Transfer-Encoding`, `Content-Length`) is left to Pingora, which
/// re-frames the body for the client connection.
static HOP_BY_HOP_RESPONSE: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
];

/// Field names listed in `Connection` headers (RFC 9110 §7.6.1).
fn connection_nominated(headers: &http::HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

fn asks_to_close(req: &RequestHeader) -> bool {
    req.headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

fn asks_for_trailers(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// `Via` added by this router to a request that has none.
const VIA: HeaderValue = HeaderValue::from_static("1.1 cellbench");

/// Appends `value` to a comma-separated list that may arrive on several
/// lines; without one, `value` as it is (the common case, nothing copied).
fn append_list(existing: http::header::GetAll<'_, HeaderValue>, value: HeaderValue) -> HeaderValue {
    let mut parts = existing.iter().filter_map(|v| v.to_str().ok()).peekable();
    if parts.peek().is_none() {
        return value;
    }
    let mut out = String::new();
    for v in parts {
        out.push_str(v);
        out.push_str(", ");
    }
    out.push_str(value.to_str().unwrap_or_default());
    // Visible ASCII joined by ", ": always a valid value.
    HeaderValue::try_from(out).unwrap_or(value)
}

/// How an error after the connection was made ended the attempt.
fn outcome_of(e: &Error) -> Outcome {
    match e.etype() {
        ErrorType::ReadTimedout => Outcome::Timeout,
        _ => Outcome::Broken,
    }
}

fn is_connect_error(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::BindError
            | ErrorType::SocketError
            | ErrorType::ConnectProxyFailure
    )
}

/// The routing decision of one request (contract §2 rules 2-4), before any
/// I/O: primary and reason, the primary's rate limit, then the first
/// available candidate. A breaker permit is taken for the serving placement.
pub struct Decision {
    pub primary: usize,
    pub reason: RouteReason,
    pub failover: Option<FailoverReason>,
    pub outcome: Verdict,
}

pub enum Verdict {
    Serve {
        serving: usize,
        admission: Option<Admission>,
    },
    RateLimited(RetryAfter),
    NoAvailablePlacement,
}

pub fn decide(snapshot: &Snapshot, routing_key: &str) -> Decision {
    let (primary, reason) = snapshot.table.route(routing_key);
    let decision = |failover, outcome| Decision {
        primary,
        reason,
        failover,
        outcome,
    };
    if let Some(limiter) = &snapshot.placements[primary].rate_limit {
        if let Err(retry_after) = limiter.check(routing_key) {
            return decision(None, Verdict::RateLimited(retry_after));
        }
    }
    let mut admission = None;
    let (serving, failover) = routing::select(snapshot.table.candidates(primary), |i| {
        let p = &snapshot.placements[i];
        if !p.health.is_healthy() {
            return Availability::Unhealthy;
        }
        match p.admit() {
            Ok(a) => {
                admission = Some(a);
                Availability::Available
            }
            Err(_) => Availability::CircuitOpen,
        }
    });
    match serving {
        Some(serving) => decision(
            failover,
            Verdict::Serve {
                serving,
                admission: admission.flatten(),
            },
        ),
        None => decision(failover, Verdict::NoAvailablePlacement),
    }
}

#[async_trait]
impl ProxyHttp for Router {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
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
            _inflight: None,
            admission: None,
            attempts: 0,
            has_body: false,
            body_bytes: 0,
            body_too_large: false,
            replay: false,
            status_retry: false,
            response_received: false,
            attempt_started: None,
            upstream_dur: None,
            error: None,
            head_watch: None,
            head_timed_out: false,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // RFC 9112 §9.3.2: answer pipelined requests in order (Pingora's
        // default drops the connection after the first response).
        session.as_downstream_mut().set_pipelining_enabled(true);
        guard::mark_busy(session.as_downstream());
        // Pingora's per-read timeout now bounds each read of the request
        // body: the client body idle timeout. Its keep-alive timeout (per
        // read of the next head) is lifted: `guard` bounds idle waits and
        // whole heads itself, which a per-read timeout cannot.
        session.set_read_timeout(Some(self.client.body_idle_timeout));
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(0));
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.store.load();
        ctx.snapshot = Some(Arc::clone(&snapshot));
        let req = session.req_header();
        // Several field lines are one value, "a, b" (RFC 9110 §5.3), which is
        // never a valid id (it has a space): only a single line is kept.
        let mut ids = req.headers.get_all("x-request-id").iter();
        ctx.request_id = match (ids.next(), ids.next()) {
            (Some(id), None) if valid_request_id(id.as_bytes()) => id.clone(),
            _ => self.ids.next(),
        };

        if asks_to_close(req) {
            // Pingora reads only the first `Connection` line; RFC 9110 §5.3
            // makes all lines one list, and RFC 9112 §9.6 says close after
            // answering.
            session.set_keepalive(None);
        }
        let req = session.req_header();
        if let Some(WireViolation {
            status,
            code,
            message,
        }) = wire_violation(req)
        {
            self.respond(session, ctx, status, code, &message, None)
                .await?;
            return Ok(true);
        }

        let key = req
            .headers
            .get("x-routing-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if key.is_empty() {
            self.respond(
                session,
                ctx,
                400,
                "missing_routing_key",
                "the X-Routing-Key header is required",
                None,
            )
            .await?;
            return Ok(true);
        }
        ctx.routing_key = String::from_utf8_lossy(key).into_owned();

        let decision = decide(&snapshot, &ctx.routing_key);
        ctx.primary = Some(decision.primary);
        ctx.route_reason = Some(decision.reason);
        ctx.failover = decision.failover;
        let serving = match decision.outcome {
            Verdict::Serve { serving, admission } => {
                ctx.serving = Some(serving);
                ctx.admission = Some(admission);
                ctx.circuit = Some(snapshot.placements[serving].circuit_state());
                serving
            }
            Verdict::RateLimited(retry_after) => {
                let primary = &snapshot.placements[decision.primary];
                primary.metrics.rate_limited();
                let msg = format!("rate limit of placement {} exceeded", primary.name);
                self.respond(session, ctx, 429, "rate_limited", &msg, Some(retry_after.0))
                    .await?;
                return Ok(true);
            }
            Verdict::NoAvailablePlacement => {
                self.respond(
                    session,
                    ctx,
                    503,
                    "no_available_placement",
                    "no placement is available for this routing key",
                    None,
                )
                .await?;
                return Ok(true);
            }
        };

        let p = Arc::clone(&snapshot.placements[serving]);
        match p.inflight.try_enter(p.concurrency_limit) {
            Some(guard) => ctx._inflight = Some(guard),
            None => {
                ctx.abandon_attempt();
                let msg = format!("concurrency limit of placement {} reached", p.name);
                self.respond(session, ctx, 503, "concurrency_limited", &msg, Some(1))
                    .await?;
                return Ok(true);
            }
        }

        let req = session.req_header();
        let content_length = req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        ctx.has_body = content_length.is_some_and(|n| n > 0)
            || req.headers.contains_key(header::TRANSFER_ENCODING);
        if let Some(length) = content_length {
            if p.max_request_body_bytes > 0 && length > p.max_request_body_bytes {
                ctx.abandon_attempt();
                let msg = body_too_large_message(&p);
                self.respond(session, ctx, 413, "body_too_large", &msg, None)
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        if !std::mem::take(&mut ctx.replay) {
            ctx.attempts += 1;
        }
        ctx.status_retry = false;
        ctx.attempt_started = Some(Instant::now());
        let p = Arc::clone(ctx.placement().expect("request_filter chose a placement"));
        let Some(addr) = p.addr else {
            // Like a failed dial: a breaker failure, and the final answer is
            // 502 upstream_connect_error.
            ctx.end_attempt_timer();
            ctx.record_attempt(false);
            return Error::e_explain(
                ErrorType::ConnectNoRoute,
                format!("endpoint {} did not resolve", p.endpoint),
            );
        };
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(p.connect_timeout);
        // Pingora applies the read timeout to every read of the response,
        // head and body: it is the body's idle timeout. The whole head has
        // its own deadline (HeadWatch, from connected_to_upstream); the
        // larger of the two here keeps a per-read limit from cutting a head
        // that is still within its deadline.
        peer.options.read_timeout =
            Some(p.response_body_idle_timeout.max(p.response_header_timeout));
        peer.options.idle_timeout = Some(Duration::from_secs(90));
        Ok(Box::new(peer))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.head_watch = HeadWatch::new(fd);
        if !ctx.has_body {
            // A bodiless request is sent as soon as its head is written.
            let timeout = ctx.placement().map(|p| p.response_header_timeout);
            if let (Some(w), Some(t)) = (ctx.head_watch.as_mut(), timeout) {
                w.start(t);
            }
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.end_attempt_timer();
        ctx.record_attempt(false);
        let method = session.req_header().method.clone();
        let retry = self.may_retry(ctx, Outcome::ConnectFailure, &method);
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !ctx.response_received && !ctx.status_retry {
            ctx.end_attempt_timer();
        }
        if let Some(mut w) = ctx.head_watch.take() {
            ctx.head_timed_out = w.disarm() && !ctx.response_received;
        }
        if ctx.body_too_large || *e.esource() == ErrorSource::Downstream {
            // Not the upstream's fault: no breaker verdict, no retry.
            ctx.abandon_attempt();
            e.set_retry(false);
            return e;
        }
        if ctx.status_retry {
            // upstream_response_filter already recorded the 5xx and took the
            // next attempt's permit.
            e.set_retry(true);
            return e;
        }
        if ctx.response_received {
            // The response is already on its way to the client.
            e.set_retry(false);
            return e;
        }
        let stale_pooled_connection =
            client_reused && matches!(e.retry, pingora::RetryType::ReusedOnly);
        // A head deadline that cut a pooled connection looks the same to
        // Pingora (closed before any answer): it is a timeout, not a replay.
        if stale_pooled_connection && ctx.body_bytes == 0 && !ctx.head_timed_out {
            // The upstream closed a pooled connection before reading the
            // request: replay it on a fresh connection, same attempt.
            ctx.replay = true;
            e.set_retry(true);
            return e;
        }
        ctx.record_attempt(false);
        let method = session.req_header().method.clone();
        let outcome = if ctx.head_timed_out {
            Outcome::Timeout
        } else {
            outcome_of(&e)
        };
        let retry = self.may_retry(ctx, outcome, &method);
        if retry {
            ctx.head_timed_out = false;
        }
        e.set_retry(retry);
        e
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if end_of_stream {
            // The request is sent: the response head's deadline starts.
            let timeout = ctx.placement().map(|p| p.response_header_timeout);
            if let (Some(w), Some(t)) = (ctx.head_watch.as_mut(), timeout) {
                w.start(t);
            }
        }
        let Some(chunk) = body else { return Ok(()) };
        ctx.body_bytes += chunk.len() as u64;
        let limit = ctx.placement().map_or(0, |p| p.max_request_body_bytes);
        if limit > 0 && ctx.body_bytes > limit {
            ctx.body_too_large = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(413),
                "request body larger than max_request_body_bytes",
            );
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let client = session.req_header();
        for name in connection_nominated(&client.headers) {
            upstream.remove_header(&name);
        }
        for name in &HOP_BY_HOP_REQUEST {
            upstream.remove_header(name);
        }
        if asks_for_trailers(&client.headers) {
            upstream.insert_header(header::TE, "trailers")?;
        }
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .map(|ip| match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            })
            .and_then(|ip| HeaderValue::try_from(ip.to_string()).ok())
            .unwrap_or(HeaderValue::from_static(""));
        let client = session.req_header();
        let forwarded_for = append_list(client.headers.get_all("x-forwarded-for"), client_ip);
        let via = append_list(client.headers.get_all(header::VIA), VIA);
        let host = client.headers.get(header::HOST).cloned();
        // RFC 9112 §3.2.2: a proxy sends origin-form to an origin server; for an
        // absolute-form target the Uri holds just its path and query.
        if is_absolute_form(client.raw_path()) {
            upstream.set_uri(client.uri.clone());
        }
        // An HTTP/1.0 request may come without Host; the HTTP/1.1 request sent
        // upstream must carry one, empty when the target has no authority
        // (RFC 9112 §3.2).
        if host.is_none() {
            upstream.insert_header(header::HOST, "")?;
        }
        // Equal Content-Length lines (RFC 9110 §8.6) go upstream as one.
        let lengths = upstream.headers.get_all(header::CONTENT_LENGTH);
        if lengths.iter().count() > 1 {
            let length = lengths.iter().next().cloned();
            if let Some(length) = length {
                upstream.insert_header(header::CONTENT_LENGTH, length)?;
            }
        }
        upstream.insert_header("X-Request-Id", ctx.request_id.clone())?;
        upstream.insert_header("X-Forwarded-For", forwarded_for)?;
        upstream.insert_header("X-Forwarded-Proto", HeaderValue::from_static("http"))?;
        match host {
            Some(host) => upstream.insert_header("X-Forwarded-Host", host)?,
            None => {
                upstream.remove_header("x-forwarded-host");
            }
        }
        upstream.insert_header(header::VIA, via)?;
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream.status.as_u16();
        if upstream.status.is_informational() && upstream.status != StatusCode::SWITCHING_PROTOCOLS
        {
            return Ok(());
        }
        ctx.end_attempt_timer();
        if let Some(w) = ctx.head_watch.as_mut() {
            w.disarm();
        }
        let outcome = Outcome::of_status(status);
        ctx.record_attempt(!routing::is_breaker_failure(outcome, status));
        if outcome == Outcome::RetryableStatus {
            let method = session.req_header().method.clone();
            if self.may_retry(ctx, outcome, &method) {
                // Failing the attempt here, before anything reached the
                // client, is how Pingora's retry loop is re-entered for a
                // response; error_while_proxy sees `status_retry`.
                ctx.status_retry = true;
                let mut e = Error::explain(
                    ErrorType::HTTPStatus(status),
                    "retrying after upstream status",
                );
                e.set_retry(true);
                return Err(e);
            }
        }
        ctx.response_received = true;
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for name in connection_nominated(&resp.headers) {
            resp.remove_header(&name);
        }
        for name in &HOP_BY_HOP_RESPONSE {
            resp.remove_header(name);
        }
        if resp.status != StatusCode::SWITCHING_PROTOCOLS {
            resp.remove_header(&header::UPGRADE);
        }
        add_explain_headers(resp, &Explain::of(ctx))
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        ctx.abandon_attempt();
        let (status, code, message): (u16, &'static str, String) = if ctx.body_too_large {
            let message = ctx
                .placement()
                .map(|p| body_too_large_message(p))
                .unwrap_or_default();
            (413, "body_too_large", message)
        } else if *e.esource() == ErrorSource::Downstream {
            match e.etype() {
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => {
                    // The client is gone: nobody to answer; logged as nginx's 499.
                    ctx.error = Some("client_closed");
                    return FailToProxy {
                        error_code: STATUS_CLIENT_CLOSED,
                        can_reuse_downstream: false,
                    };
                }
                ErrorType::ReadTimedout => (
                    408,
                    "request_timeout",
                    "the request body stalled longer than the client body idle timeout".into(),
                ),
                _ => (
                    400,
                    "bad_request",
                    format!("the request body could not be read: {e}"),
                ),
            }
        } else {
            let name = ctx.placement().map_or("", |p| p.name.as_str());
            if matches!(e.etype(), ErrorType::ReadTimedout) || ctx.head_timed_out {
                (
                    504,
                    "upstream_timeout",
                    format!("placement {name} did not answer in time"),
                )
            } else if is_connect_error(e) {
                (
                    502,
                    "upstream_connect_error",
                    format!("could not connect to placement {name}"),
                )
            } else {
                (
                    502,
                    "upstream_error",
                    format!("placement {name} closed the connection without an answer"),
                )
            }
        };
        if session.response_written().is_some() {
            // Headers already went out: the only thing left is to cut the
            // connection, which Pingora does.
            ctx.error = Some(match *e.esource() {
                _ if ctx.body_too_large => "body_too_large",
                ErrorSource::Downstream => "client_closed",
                // The body's idle timeout (Pingora's per-read timeout).
                _ if matches!(e.etype(), ErrorType::ReadTimedout) => "upstream_timeout",
                _ => "upstream_error",
            });
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        // Pingora does not reuse the client connection after a proxy error;
        // say so, or a client may send its next request into the close.
        session.set_keepalive(None);
        if self
            .respond(session, ctx, status, code, &message, None)
            .await
            .is_err()
        {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        // Pingora closes the connection after a proxy error: make that a FIN
        // after the answer, not a reset that can destroy it.
        linger::linger_close(session).await;
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // Every request already has its access-log line with the error code.
        true
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.abandon_attempt();
        ctx.head_watch = None;
        guard::mark_waiting(session.as_downstream());
        let status = match session.response_written() {
            Some(resp) => resp.status.as_u16(),
            None if ctx.error == Some("client_closed") => STATUS_CLIENT_CLOSED,
            None => 0,
        };
        let route_reason = ctx.route_reason.map_or("", RouteReason::as_str);
        let duration = ctx.started.elapsed();
        // Counted under the serving placement, else the primary (refused by
        // its rate limit or for lack of an available placement), else
        // unrouted (refused before routing).
        let counted = match (&ctx.snapshot, ctx.serving.or(ctx.primary)) {
            (Some(s), Some(i)) => Arc::clone(&s.placements[i].metrics),
            _ => metrics::unrouted(),
        };
        counted.request(status, ctx.route_reason, duration);
        if !logs::access_enabled() {
            return;
        }
        let req = session.req_header();
        let upstream = ctx
            .placement()
            .filter(|_| ctx.attempts > 0)
            .map(|p| p.endpoint.clone());
        logs::access(&AccessRecord {
            request_id: ctx.request_id(),
            method: req.method.as_str(),
            path: req.uri.path(),
            routing_key: &ctx.routing_key,
            placement: ctx.placement_name(ctx.serving.or(ctx.primary)),
            route_reason,
            failover_reason: ctx.failover.map_or("", FailoverReason::as_str),
            upstream: upstream.as_deref().unwrap_or(""),
            status,
            attempts: ctx.attempts,
            error: ctx.error.unwrap_or(""),
            duration_ms: duration.as_secs_f64() * 1000.0,
            upstream_ms: ctx.upstream_dur.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            bytes_out: session.body_bytes_sent() as u64,
            config_version: ctx.snapshot.as_ref().map_or("", |s| s.version()),
        });
    }
}

#[cfg(test)]
mod props;

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

    #[test]
    fn connection_nominated_fields() {
        let mut h = http::HeaderMap::new();
        h.append(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret"),
        );
        h.append(header::CONNECTION, HeaderValue::from_static(" x-other "));
        let names: Vec<_> = connection_nominated(&h)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names, ["close", "x-secret", "x-other"]);
    }

    #[test]
    fn head_size_counts_line_and_fields() {
        let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
        req.insert_header("x-a", "bc").unwrap();
        // "GET /a HTTP/1.1\r\n" + "x-a: bc\r\n" + "\r\n"
        assert_eq!(request_head_bytes(&req), 17 + 9 + 2);
    }
}
