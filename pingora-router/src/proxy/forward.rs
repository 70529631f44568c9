//! What goes upstream and what comes back: the hop-by-hop fields a proxy
//! drops (RFC 9110 §7.6.1) and the forwarding fields it adds (contract §3).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::Session;
use pingora::Result;

use super::admission::is_absolute_form;
use crate::snapshot::PlacementRuntime;

/// Rewrites the request sent upstream: hop-by-hop fields out, the
/// forwarding fields and `X-Request-Id` in, origin-form target, one `Host`.
pub fn upstream_request(
    session: &Session,
    upstream: &mut RequestHeader,
    request_id: &HeaderValue,
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
    upstream.insert_header("X-Request-Id", request_id.clone())?;
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

/// The upstream peer of one attempt to placement `p` at `addr`.
pub fn peer(p: &PlacementRuntime, addr: SocketAddr) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, false, String::new());
    peer.options.connection_timeout = Some(p.connect_timeout);
    // Pingora applies the read timeout to every read of the response,
    // head and body: it is the body's idle timeout. The whole head has
    // its own deadline (HeadWatch, from connected_to_upstream); the
    // larger of the two here keeps a per-read limit from cutting a head
    // that is still within its deadline.
    peer.options.read_timeout = Some(p.response_body_idle_timeout.max(p.response_header_timeout));
    peer.options.idle_timeout = Some(Duration::from_secs(90));
    peer
}

/// Drops the hop-by-hop fields of the upstream's response head.
pub fn client_response(resp: &mut ResponseHeader) {
    for name in connection_nominated(&resp.headers) {
        resp.remove_header(&name);
    }
    for name in &HOP_BY_HOP_RESPONSE {
        resp.remove_header(name);
    }
    if resp.status != StatusCode::SWITCHING_PROTOCOLS {
        resp.remove_header(&header::UPGRADE);
    }
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
pub fn connection_nominated(headers: &http::HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
