//! The `ProxyHttp` implementation: the contract's request path (§2, §3) on
//! Pingora's hooks. Each hook is a few lines that call a named module:
//!
//! - [`admission`]: wire rules, request id, routing key, body framing;
//! - [`route`]: the routing decision (rate limit, health, breaker) and the
//!   serving placement's concurrency and body limits;
//! - [`attempts`]: the attempt state machine (retries, breaker permits,
//!   what is retryable, the response-head deadline);
//! - [`error`]: the router's error codes and its JSON answers;
//! - [`explain`]: the §3 explainability headers;
//! - [`forward`]: hop-by-hop and forwarding fields;
//! - [`access_log`]: metrics and the access-log record;
//! - [`linger`]: the lingering close after an error answer.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::guard::{self, ClientLimits};
use crate::logs::AccessLog;
use crate::snapshot::{PlacementRuntime, SnapshotStore};

mod access_log;
pub mod admission;
pub mod attempts;
pub mod error;
pub mod exchange;
pub mod explain;
mod forward;
mod linger;
pub mod route;

use error::respond_error;
pub use exchange::{active_requests, Exchange};
pub use explain::{add_explain_headers, Explain};
pub use route::{decide, Decision, Verdict};

/// Upper bound on Pingora's retry loop. Attempts proper are counted and capped
/// by the router (`max_attempts` <= 5); the extra room is for replays on a
/// pooled upstream connection the upstream had already closed, which are not
/// attempts (the request never reached the upstream).
pub const MAX_PINGORA_RETRIES: usize = 8;

/// The router: the `ProxyHttp` service over the live snapshot.
pub struct Router {
    store: Arc<SnapshotStore>,
    ids: exchange::RequestIds,
    client: ClientLimits,
    access_log: AccessLog,
}

impl Router {
    pub fn new(store: Arc<SnapshotStore>) -> Self {
        Router {
            store,
            ids: exchange::RequestIds::new(),
            client: ClientLimits {
                head_timeout: guard::DEFAULT_HEAD_TIMEOUT,
                idle_timeout: guard::DEFAULT_IDLE_TIMEOUT,
                body_idle_timeout: guard::DEFAULT_BODY_IDLE_TIMEOUT,
                max_connections: usize::MAX,
                shed_rate: guard::DEFAULT_SHED_RATE,
            },
            access_log: AccessLog::off(),
        }
    }

    /// The client-side settings (the request-body idle timeout is applied
    /// per request here; the rest by `guard` on the listener).
    pub fn with_client_limits(mut self, client: ClientLimits) -> Self {
        self.client = client;
        self
    }

    /// Where each finished request's access-log line goes (off without it).
    pub fn with_access_log(mut self, access_log: AccessLog) -> Self {
        self.access_log = access_log;
        self
    }
}

/// The serving placement of a routed request, borrowed apart from the
/// exchange's attempts so both can be used at once.
fn serving(ex: &mut Exchange) -> (Option<&PlacementRuntime>, &mut attempts::Attempts) {
    let placement = match (&ex.snapshot, ex.serving) {
        (Some(s), Some(i)) => Some(&*s.placements[i]),
        _ => None,
    };
    (placement, &mut ex.attempts)
}

#[async_trait]
impl ProxyHttp for Router {
    type CTX = Exchange;

    fn new_ctx(&self) -> Exchange {
        Exchange::new()
    }

    async fn early_request_filter(&self, session: &mut Session, _ex: &mut Exchange) -> Result<()> {
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

    async fn request_filter(&self, session: &mut Session, ex: &mut Exchange) -> Result<bool> {
        let snapshot = self.store.load();
        ex.snapshot = Some(Arc::clone(&snapshot));
        ex.request_id = admission::request_id(session.req_header(), &self.ids);
        if admission::asks_to_close(session.req_header()) {
            // Pingora reads only the first `Connection` line; RFC 9110 §5.3
            // makes all lines one list, and RFC 9112 §9.6 says close after
            // answering.
            session.set_keepalive(None);
        }
        match route::route(ex, &snapshot, session.req_header()) {
            Ok(()) => Ok(false),
            Err(refusal) => {
                respond_error(session, ex, &refusal).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ex: &mut Exchange,
    ) -> Result<Box<HttpPeer>> {
        ex.attempts.start();
        let (Some(p), attempts) = serving(ex) else {
            return Error::e_explain(ErrorType::InternalError, "upstream_peer before routing");
        };
        let Some(addr) = p.addr else {
            // Like a failed dial: the final answer is 502 upstream_connect_error.
            attempts.unreachable();
            let message = format!("endpoint {} did not resolve", p.endpoint);
            return Error::e_explain(ErrorType::ConnectNoRoute, message);
        };
        Ok(Box::new(forward::peer(p, addr)))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ex: &mut Exchange,
    ) -> Result<()> {
        if let (Some(p), attempts) = serving(ex) {
            attempts.connected(fd, p.response_header_timeout);
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ex: &mut Exchange,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let (placement, attempts) = serving(ex);
        let retry =
            placement.is_some_and(|p| attempts.connect_failed(p, &session.req_header().method));
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ex: &mut Exchange,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let failure = error::classify(&e, client_reused);
        let (placement, attempts) = serving(ex);
        let retry = placement
            .is_some_and(|p| attempts.proxy_failed(p, &session.req_header().method, failure));
        e.set_retry(retry);
        e
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ex: &mut Exchange,
    ) -> Result<()> {
        let (Some(p), attempts) = serving(ex) else {
            return Ok(());
        };
        if end_of_stream {
            attempts.request_sent(p.response_header_timeout);
        }
        let within_limit = body
            .as_ref()
            .is_none_or(|chunk| attempts.body_chunk(chunk.len(), p.max_request_body_bytes));
        if !within_limit {
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
        ex: &mut Exchange,
    ) -> Result<()> {
        forward::upstream_request(session, upstream, &ex.request_id)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream: &mut ResponseHeader,
        ex: &mut Exchange,
    ) -> Result<()> {
        if upstream.status.is_informational()
            && upstream.status != http::StatusCode::SWITCHING_PROTOCOLS
        {
            return Ok(());
        }
        let status = upstream.status.as_u16();
        let (placement, attempts) = serving(ex);
        if placement
            .is_some_and(|p| attempts.response_head(p, &session.req_header().method, status))
        {
            // Failing the attempt here, before anything reached the client, is
            // how Pingora's retry loop is re-entered for a response.
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "retrying after upstream status",
            );
            e.set_retry(true);
            return Err(e);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ex: &mut Exchange,
    ) -> Result<()> {
        forward::client_response(resp);
        add_explain_headers(resp, &Explain::of(ex))
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ex: &mut Exchange,
    ) -> FailToProxy {
        error::fail_to_proxy(session, e, ex).await
    }

    fn suppress_error_log(&self, _session: &Session, _ex: &Exchange, _error: &Error) -> bool {
        // Every request already has its access-log line with the error code.
        true
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ex: &mut Exchange) {
        ex.attempts.finish();
        guard::mark_waiting(session.as_downstream());
        access_log::record(&self.access_log, session, ex);
    }
}

#[cfg(test)]
mod props;
