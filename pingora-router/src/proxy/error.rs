//! Router error answers (contract §3): the error codes as one enum, the JSON
//! answer the router writes itself, and which code a proxy failure is.

use std::borrow::Cow;

use bytes::Bytes;
use http::header;
use http::Method;
use pingora::http::ResponseHeader;
use pingora::proxy::{FailToProxy, Session};
use pingora::{Error, ErrorSource, ErrorType, Result, RetryType};

use super::attempts::{Attempts, ProxyFailure};
use super::exchange::Exchange;
use super::explain::{add_explain_headers, Explain};
use crate::snapshot::PlacementRuntime;

/// Every error the router reports, answered or only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    MissingRoutingKey,
    RequestHeaderTooLarge,
    NotImplemented,
    MethodNotSupported,
    BodyTooLarge,
    RequestTimeout,
    RateLimited,
    NoAvailablePlacement,
    ConcurrencyLimited,
    UpstreamConnectError,
    UpstreamTimeout,
    UpstreamError,
    /// The client left before its answer: logged, never sent.
    ClientClosed,
}

impl ErrorCode {
    /// The code in the JSON body and the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MissingRoutingKey => "missing_routing_key",
            ErrorCode::RequestHeaderTooLarge => "request_header_too_large",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::MethodNotSupported => "method_not_supported",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoAvailablePlacement => "no_available_placement",
            ErrorCode::ConcurrencyLimited => "concurrency_limited",
            ErrorCode::UpstreamConnectError => "upstream_connect_error",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::ClientClosed => "client_closed",
        }
    }

    /// The status answered (499, nginx's "client closed", is only logged).
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::MissingRoutingKey => 400,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::RequestHeaderTooLarge => 431,
            ErrorCode::ClientClosed => 499,
            ErrorCode::NotImplemented | ErrorCode::MethodNotSupported => 501,
            ErrorCode::UpstreamConnectError | ErrorCode::UpstreamError => 502,
            ErrorCode::NoAvailablePlacement | ErrorCode::ConcurrencyLimited => 503,
            ErrorCode::UpstreamTimeout => 504,
        }
    }

    /// Whether the connection closes after the answer: the request's framing
    /// is broken, or its body is not going to be read, so the connection
    /// cannot carry another request. (Failures while proxying close it too,
    /// whatever the code: Pingora does not reuse the connection after them.)
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::BadRequest
                | ErrorCode::BodyTooLarge
                | ErrorCode::RequestHeaderTooLarge
                | ErrorCode::NotImplemented
                | ErrorCode::MethodNotSupported
                | ErrorCode::RequestTimeout
        )
    }
}

/// A refusal: the code and the message of the JSON body.
#[derive(Debug)]
pub struct Refusal {
    pub code: ErrorCode,
    /// Borrowed when fixed: most refusals need no allocation for it.
    pub message: Cow<'static, str>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// Answers the request with a router error: JSON body and the
/// explainability headers known at this point.
pub async fn respond_error(
    session: &mut Session,
    ex: &mut Exchange,
    refusal: &Refusal,
) -> Result<()> {
    let code = refusal.code;
    ex.error = Some(code);
    let body = serde_json::json!({
        "error": code.as_str(),
        "message": refusal.message,
        "request_id": ex.request_id(),
    });
    let body = Bytes::from(body.to_string());
    let mut resp = ResponseHeader::build(code.status(), Some(12))?;
    resp.insert_header(header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    if let Some(secs) = refusal.retry_after {
        resp.insert_header(header::RETRY_AFTER, secs)?;
    }
    add_explain_headers(&mut resp, &Explain::of(ex))?;
    if code.closes_connection() {
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    if session.get_keepalive().is_none() {
        // The connection closes after this answer (by the code, the
        // client's `Connection: close`, or a proxy error): make that a FIN
        // after the answer, not a reset that can destroy it.
        super::linger::linger_close(session).await;
    }
    Ok(())
}

/// Answers a request whose proxying failed (Pingora's `fail_to_proxy`), or
/// only logs it when nothing can be answered any more.
pub async fn fail_to_proxy(session: &mut Session, e: &Error, ex: &mut Exchange) -> FailToProxy {
    ex.attempts.abandon();
    let refusal = proxy_failure(e, &ex.attempts, ex.placement().map(|p| &**p));
    let closed = |error_code| FailToProxy {
        error_code,
        can_reuse_downstream: false,
    };
    if refusal.code == ErrorCode::ClientClosed {
        // The client is gone: nobody to answer; logged as nginx's 499.
        ex.error = Some(refusal.code);
        return closed(refusal.code.status());
    }
    if session.response_written().is_some() {
        // The head already went out: the only thing left is to cut the
        // connection, which Pingora does.
        ex.error = Some(failure_after_head(e, &ex.attempts));
        return closed(refusal.code.status());
    }
    // Pingora does not reuse the client connection after a proxy error;
    // say so, or a client may send its next request into the close.
    session.set_keepalive(None);
    if respond_error(session, ex, &refusal).await.is_err() {
        return closed(0);
    }
    closed(refusal.code.status())
}

/// The code of a request that failed while being proxied, from Pingora's
/// error and what the attempts saw; `serving` is the serving placement.
pub fn proxy_failure(
    e: &Error,
    attempts: &Attempts,
    serving: Option<&PlacementRuntime>,
) -> Refusal {
    if attempts.body_too_large() {
        let message = serving.map(body_too_large_message).unwrap_or_default();
        return Refusal::new(ErrorCode::BodyTooLarge, message);
    }
    if *e.esource() == ErrorSource::Downstream {
        return match e.etype() {
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => {
                Refusal::new(ErrorCode::ClientClosed, "")
            }
            ErrorType::ReadTimedout => Refusal::new(
                ErrorCode::RequestTimeout,
                "the request body stalled longer than the client body idle timeout",
            ),
            _ => Refusal::new(
                ErrorCode::BadRequest,
                format!("the request body could not be read: {e}"),
            ),
        };
    }
    let placement = serving.map_or("", |p| p.name.as_str());
    if matches!(e.etype(), ErrorType::ReadTimedout) || attempts.head_timed_out() {
        Refusal::new(
            ErrorCode::UpstreamTimeout,
            format!("placement {placement} did not answer in time"),
        )
    } else if is_connect_error(e) {
        Refusal::new(
            ErrorCode::UpstreamConnectError,
            format!("could not connect to placement {placement}"),
        )
    } else {
        Refusal::new(
            ErrorCode::UpstreamError,
            format!("placement {placement} closed the connection without an answer"),
        )
    }
}

/// What Pingora's error says about a failed attempt, for the attempts.
pub fn classify(e: &Error, client_reused: bool) -> ProxyFailure {
    ProxyFailure {
        downstream: *e.esource() == ErrorSource::Downstream,
        stale_pooled_connection: client_reused && matches!(e.retry, RetryType::ReusedOnly),
        read_timed_out: matches!(e.etype(), ErrorType::ReadTimedout),
    }
}

/// The code logged when the failure came after the response head went out
/// (nothing can be answered any more; the connection is cut).
pub fn failure_after_head(e: &Error, attempts: &Attempts) -> ErrorCode {
    match *e.esource() {
        _ if attempts.body_too_large() => ErrorCode::BodyTooLarge,
        ErrorSource::Downstream => ErrorCode::ClientClosed,
        // The body's idle timeout (Pingora's per-read timeout).
        _ if matches!(e.etype(), ErrorType::ReadTimedout) => ErrorCode::UpstreamTimeout,
        _ => ErrorCode::UpstreamError,
    }
}

pub fn body_too_large_message(p: &PlacementRuntime) -> String {
    format!(
        "request body is larger than the {} bytes placement {} accepts",
        p.max_request_body_bytes, p.name
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 14] = [
        ErrorCode::BadRequest,
        ErrorCode::MissingRoutingKey,
        ErrorCode::RequestHeaderTooLarge,
        ErrorCode::NotImplemented,
        ErrorCode::MethodNotSupported,
        ErrorCode::BodyTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::NoAvailablePlacement,
        ErrorCode::ConcurrencyLimited,
        ErrorCode::UpstreamConnectError,
        ErrorCode::UpstreamTimeout,
        ErrorCode::UpstreamError,
        ErrorCode::ClientClosed,
    ];

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
        }
    }

    #[test]
    fn statuses_and_closing_follow_the_contract() {
        let table: Vec<_> = ALL
            .iter()
            .map(|c| (c.as_str(), c.status(), c.closes_connection()))
            .collect();
        assert_eq!(
            table,
            [
                ("bad_request", 400, true),
                ("missing_routing_key", 400, false),
                ("request_header_too_large", 431, true),
                ("not_implemented", 501, true),
                ("method_not_supported", 501, true),
                ("body_too_large", 413, true),
                ("request_timeout", 408, true),
                ("rate_limited", 429, false),
                ("no_available_placement", 503, false),
                ("concurrency_limited", 503, false),
                ("upstream_connect_error", 502, false),
                ("upstream_timeout", 504, false),
                ("upstream_error", 502, false),
                ("client_closed", 499, false),
            ]
        );
    }

    #[test]
    fn proxy_failures_by_error_type() {
        let attempts = Attempts::default();
        let upstream = Error::new_up;
        let code = |e: &Error| proxy_failure(e, &attempts, None).code;
        assert_eq!(
            code(&upstream(ErrorType::ConnectRefused)),
            ErrorCode::UpstreamConnectError
        );
        assert_eq!(
            code(&upstream(ErrorType::ReadTimedout)),
            ErrorCode::UpstreamTimeout
        );
        assert_eq!(
            code(&upstream(ErrorType::ConnectionClosed)),
            ErrorCode::UpstreamError
        );
        let client = Error::new_down(ErrorType::ConnectionClosed);
        assert_eq!(code(&client), ErrorCode::ClientClosed);
        assert_eq!(
            failure_after_head(&client, &attempts),
            ErrorCode::ClientClosed
        );
        let stalled = Error::new_down(ErrorType::ReadTimedout);
        assert_eq!(code(&stalled), ErrorCode::RequestTimeout);
    }
}
