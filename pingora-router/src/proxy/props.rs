//! Property tests of the request checks that run before routing: each rule
//! against a model written from the RFC, over generated requests (field
//! lines split and padded every legal way, mixed case, other faults).

use proptest::prelude::*;

use http::header::{self, HeaderValue};
use pingora::http::RequestHeader;

use super::admission::{asks_to_close, request_head_bytes, wire_violation, MAX_REQUEST_HEAD_BYTES};
use super::exchange::{valid_request_id, MAX_REQUEST_ID_BYTES};
use super::forward::connection_nominated;

/// A request that passes every check: one valid Host, origin-form target.
fn request(method: &str, version: http::Version) -> RequestHeader {
    let mut req = RequestHeader::build(method, b"/path?q=1", None).expect("a request");
    req.set_version(version);
    req.append_header(header::HOST, "cell.example:8080")
        .expect("a Host");
    req
}

/// A comma-separated list as a client may send it: the elements in order,
/// spread over one or more field lines, padded with spaces and tabs, with
/// empty elements in between (RFC 9110 §5.6.1 lets a recipient skip them).
fn list_lines(elements: Vec<String>) -> impl Strategy<Value = Vec<String>> {
    let n = elements.len();
    (
        prop::collection::vec(any::<bool>(), n),
        prop::collection::vec(prop::sample::select(&["", " ", "\t", " , "][..]), n),
    )
        .prop_map(move |(breaks, pads)| {
            let mut lines = vec![String::new()];
            for (i, element) in elements.iter().enumerate() {
                let line = lines.last_mut().expect("a line");
                if !line.is_empty() {
                    line.push(',');
                }
                line.push_str(pads[i]);
                line.push_str(element);
                line.push_str(pads[i].trim_end_matches(','));
                if breaks[i] && i + 1 < n {
                    lines.push(String::new());
                }
            }
            lines
        })
}

fn mixed_case(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        mixed_case("close"),
        mixed_case("keep-alive"),
        mixed_case("chunked"),
        mixed_case("gzip"),
        "[a-zA-Z][a-zA-Z0-9-]{0,8}",
    ]
}

fn codings() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    prop::collection::vec(
        prop_oneof![
            mixed_case("chunked"),
            mixed_case("gzip"),
            mixed_case("identity")
        ],
        1..4,
    )
    .prop_flat_map(|codings| (Just(codings.clone()), list_lines(codings)))
}

proptest! {
    #[test]
    fn transfer_coding_must_be_one_final_chunked((codings, lines) in codings()) {
        let mut req = request("POST", http::Version::HTTP_11);
        for line in &lines {
            req.append_header(header::TRANSFER_ENCODING, line.as_str()).unwrap();
        }
        let one_chunked = codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked");
        match wire_violation(&req) {
            None => prop_assert!(one_chunked, "accepted {lines:?}"),
            Some(v) => {
                prop_assert!(!one_chunked, "refused {lines:?}: {}", v.message);
                prop_assert_eq!((v.code.status(), v.code.as_str()), (501, "not_implemented"));
            }
        }
    }

    #[test]
    fn exactly_one_host_and_none_only_before_http_1_1(
        hosts in 0usize..4,
        http_10 in any::<bool>(),
        method in prop::sample::select(&["GET", "POST", "DELETE", "OPTIONS"][..]),
    ) {
        let version = if http_10 { http::Version::HTTP_10 } else { http::Version::HTTP_11 };
        let mut req = request(method, version);
        req.remove_header(&header::HOST);
        for i in 0..hosts {
            req.append_header(header::HOST, format!("cell-{i}.example")).unwrap();
        }
        let allowed = hosts == 1 || (hosts == 0 && http_10);
        let verdict = wire_violation(&req).map(|v| (v.code.status(), v.code.as_str()));
        prop_assert_eq!(verdict, (!allowed).then_some((400, "bad_request")));
    }

    #[test]
    fn an_oversized_head_is_431_before_any_other_fault(
        pad in 0usize..2048,
        host_twice in any::<bool>(),
        connect in any::<bool>(),
    ) {
        let mut req = request(if connect { "CONNECT" } else { "GET" }, http::Version::HTTP_11);
        if host_twice {
            req.append_header(header::HOST, "other.example").unwrap();
        }
        let base = request_head_bytes(&req);
        let field = "x-pad: ".len() + 2;
        let fill = MAX_REQUEST_HEAD_BYTES + pad - base - field + 1;
        req.append_header("x-pad", "p".repeat(fill)).unwrap();
        prop_assert_eq!(request_head_bytes(&req), MAX_REQUEST_HEAD_BYTES + pad + 1);
        let verdict = wire_violation(&req).map(|v| (v.code.status(), v.code.as_str()));
        prop_assert_eq!(verdict, Some((431, "request_header_too_large")));
    }

    #[test]
    fn head_size_is_the_length_of_the_head_as_written(
        path in "/[a-zA-Z0-9/._~-]{0,40}",
        fields in prop::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,30}"), 0..8),
    ) {
        let mut req = RequestHeader::build("PATCH", path.as_bytes(), None).unwrap();
        let mut written = format!("PATCH {path} HTTP/1.1\r\n");
        for (name, value) in &fields {
            let value = value.trim();
            req.append_header(name.clone(), value).unwrap();
            written.push_str(&format!("{name}: {value}\r\n"));
        }
        written.push_str("\r\n");
        prop_assert_eq!(request_head_bytes(&req), written.len());
    }

    #[test]
    fn a_client_request_id_is_kept_iff_it_is_1_to_128_visible_ascii(
        id in prop::collection::vec(any::<u8>(), 0..140),
    ) {
        let expected = (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
            && id.iter().all(|b| b.is_ascii_graphic());
        prop_assert_eq!(valid_request_id(&id), expected);
        if expected {
            // It goes back out in X-Request-Id and into the access log.
            prop_assert!(HeaderValue::from_bytes(&id).is_ok());
        }
    }

    #[test]
    fn connection_options_are_read_from_every_line(
        lines in prop::collection::vec(token(), 1..5).prop_flat_map(|t| (Just(t.clone()), list_lines(t)))
    ) {
        let (tokens, lines) = lines;
        let mut req = request("GET", http::Version::HTTP_11);
        for line in &lines {
            req.append_header(header::CONNECTION, line.as_str()).unwrap();
        }
        let expected: Vec<String> = tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
        let nominated: Vec<String> = connection_nominated(&req.headers)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        prop_assert_eq!(nominated, expected.clone());
        prop_assert_eq!(asks_to_close(&req), expected.iter().any(|t| t == "close"));
    }

    #[test]
    fn no_request_head_makes_the_checks_panic(
        method in "[A-Z]{1,8}",
        target in prop::collection::vec(any::<u8>(), 0..64),
        fields in prop::collection::vec(
            (prop::sample::select(&["host", "transfer-encoding", "content-length", "connection", "x-a"][..]),
             prop::collection::vec(0x20u8..0x7f, 0..20)),
            0..6,
        ),
    ) {
        let Ok(mut req) = RequestHeader::build(method.as_str(), &target, None) else {
            return Ok(());
        };
        for (name, value) in fields {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                req.append_header(name, value).unwrap();
            }
        }
        if let Some(v) = wire_violation(&req) {
            prop_assert!([400, 431, 501].contains(&v.code.status()), "{:?}", v.code);
        }
        let _ = asks_to_close(&req);
        let _ = connection_nominated(&req.headers);
    }
}
