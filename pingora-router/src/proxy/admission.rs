//! Request admission before routing: the contract's wire rules (§2, RFC
//! 9112), the request id, the routing key and how the body is framed.

use http::header::{self, HeaderValue};
use http::Method;
use pingora::http::RequestHeader;

use super::error::{ErrorCode, Refusal};
use super::exchange::{valid_request_id, RequestIds};

/// Largest request head (request line and header fields) accepted (contract
/// §2 wire rules). Pingora's own limit is 1 MiB, so the router checks this.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// The client's `X-Request-Id` when it sent one valid line, else a new id.
/// Several field lines are one value, "a, b" (RFC 9110 §5.3), which is never
/// a valid id (it has a space): only a single line is kept.
pub fn request_id(req: &RequestHeader, ids: &RequestIds) -> HeaderValue {
    let mut lines = req.headers.get_all("x-request-id").iter();
    match (lines.next(), lines.next()) {
        (Some(id), None) if valid_request_id(id.as_bytes()) => id.clone(),
        _ => ids.next(),
    }
}

/// The routing key (contract §2 rule 1), required and non-empty.
pub fn routing_key(req: &RequestHeader) -> Result<String, Refusal> {
    let key = req
        .headers
        .get("x-routing-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if key.is_empty() {
        return Err(Refusal::new(
            ErrorCode::MissingRoutingKey,
            "the X-Routing-Key header is required",
        ));
    }
    Ok(String::from_utf8_lossy(key).into_owned())
}

/// How the request body is framed: whether there is one, and its
/// `Content-Length` when it has a usable one.
pub fn body_framing(req: &RequestHeader) -> (bool, Option<u64>) {
    let content_length = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let has_body = content_length.is_some_and(|n| n > 0)
        || req.headers.contains_key(header::TRANSFER_ENCODING);
    (has_body, content_length)
}

/// A request the router refuses before routing because of how it is framed
/// (contract §2 wire rules, RFC 9112). What Pingora's parser already
/// refuses (invalid or conflicting `Content-Length`, a non-chunked final
/// coding, malformed lines) never reaches the hooks.
pub fn wire_violation(req: &RequestHeader) -> Option<Refusal> {
    let violation = |code, message: &'static str| Some(Refusal::new(code, message));
    if request_head_bytes(req) > MAX_REQUEST_HEAD_BYTES {
        let message = format!("request head is larger than {MAX_REQUEST_HEAD_BYTES} bytes");
        return Some(Refusal::new(ErrorCode::RequestHeaderTooLarge, message));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; none has two.
    let hosts = req.headers.get_all(header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && req.version == http::Version::HTTP_11) {
        return violation(
            ErrorCode::BadRequest,
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
        return violation(ErrorCode::BadRequest, "the Host header is not a valid host");
    }
    // RFC 9110 §8.6: Content-Length is 1*DIGIT. Pingora's parser takes a list
    // of equal values ("5, 5") but the field would go upstream as it came:
    // refused, as every line must be one number and all lines the same.
    let mut lengths = req.headers.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let first = first.as_bytes().trim_ascii();
        let number = |v: &[u8]| !v.is_empty() && v.iter().all(u8::is_ascii_digit);
        if !number(first) || lengths.any(|v| v.as_bytes().trim_ascii() != first) {
            return violation(
                ErrorCode::BadRequest,
                "the Content-Length is not one number",
            );
        }
    }
    // RFC 9112 §3.2: origin-form, absolute-form, or `*` for OPTIONS. CONNECT
    // (authority-form) asks for a tunnel this reverse proxy does not offer.
    if req.method == Method::CONNECT {
        return violation(
            ErrorCode::MethodNotSupported,
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
            ErrorCode::BadRequest,
            "the request target has bytes that are not URI characters",
        );
    }
    if !(origin_form || asterisk || absolute_form) {
        return violation(
            ErrorCode::BadRequest,
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
                ErrorCode::NotImplemented,
                "the only transfer coding accepted is a single chunked",
            );
        }
    }
    None
}

/// An absolute-form request target (RFC 9112 §3.2.2) of an http(s) URI.
pub fn is_absolute_form(target: &[u8]) -> bool {
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
pub fn request_head_bytes(req: &RequestHeader) -> usize {
    let line = req.method.as_str().len() + 1 + req.raw_path().len() + 1 + "HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
        .sum();
    line + fields + 2
}

pub fn asks_to_close(req: &RequestHeader) -> bool {
    req.headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_size_counts_line_and_fields() {
        let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
        req.insert_header("x-a", "bc").unwrap();
        // "GET /a HTTP/1.1\r\n" + "x-a: bc\r\n" + "\r\n"
        assert_eq!(request_head_bytes(&req), 17 + 9 + 2);
    }
}
