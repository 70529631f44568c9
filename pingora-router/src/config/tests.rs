use super::*;

const MINIMAL: &str = r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#;

fn outcome(doc: &[u8]) -> &'static str {
    match parse(doc) {
        Ok(_) => "ok",
        Err(err) => err.code,
    }
}

/// Documents with a value nested `depth` levels deep in an unknown field.
fn nested_unknown(depth: usize) -> String {
    MINIMAL.replacen(
        '{',
        &format!("{{\"zz\":{}{},", "[".repeat(depth), "]".repeat(depth)),
        1,
    )
}

// (name, document, code) — every expectation checked against Go's config.Parse.
const GO_PARITY_CASES: &[(&str, &str, &str)] = &[
    (
        "Kcase",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","Kind":"shared"}}}"#,
        "unknown_field",
    ),
    (
        "bool_int",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":true}}}"#,
        "parse_error",
    ),
    (
        "ep_bigv4",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://999.1.1.1:80"}}}"#,
        "ok",
    ),
    (
        "ep_brackets_in_host",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://a]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_double_slash",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:80//"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_hyphen",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://-h:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_ipv4",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://10.0.0.1:8080"}}}"#,
        "ok",
    ),
    (
        "ep_leading_zero_port",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:080"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_plus",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:+80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_port_space",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h: 80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_space",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h :80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_underscore",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h_x:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v4_bracket",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[1.2.3.4]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::1]:80/"}}}"#,
        "ok",
    ),
    (
        "ep_v6_5hex",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::12345]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_colon_noport",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::1]:"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_embedded",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::1.2.3.4]:80"}}}"#,
        "ok",
    ),
    (
        "ep_v6_full_ellipsis",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[1:2:3:4:5:6:7:8::]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_leadingzero_v4",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::1.02.3.4]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_mapped",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::ffff:1.2.3.4]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_noport",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[::1]"}}}"#,
        "endpoint_invalid",
    ),
    (
        "ep_v6_trailing_ellipsis",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[1:2:3:4:5:6:7::]:80"}}}"#,
        "ok",
    ),
    (
        "ep_v6_upper",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[FE80::ABCD]:80"}}}"#,
        "ok",
    ),
    (
        "ep_v6_zone",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://[fe80::1%25eth0]:80"}}}"#,
        "endpoint_invalid",
    ),
    (
        "escape_dup",
        r#"{"version":"v","ver\u0073ion":"w","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "parse_error",
    ),
    (
        "exp",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":1e3}}}"#,
        "parse_error",
    ),
    (
        "fallback_empty",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","fallback":""}}}"#,
        "ok",
    ),
    (
        "int_big",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":9223372036854775808}}}"#,
        "parse_error",
    ),
    (
        "int_max",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":9223372036854775807}}}"#,
        "ok",
    ),
    (
        "negzero",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":-0}}}"#,
        "ok",
    ),
    (
        "onepointzero",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","concurrency_limit":1.0}}}"#,
        "parse_error",
    ),
    (
        "placement_string",
        r#"{"version":"v","default_placement":"a","placements":{"a":"x"}}"#,
        "parse_error",
    ),
    (
        "retry_empty",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","retry":{}}}}"#,
        "retry_invalid",
    ),
    (
        "rl_per_missing",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","rate_limit":{"requests_per_second":5,"burst":1}}}}"#,
        "rate_limit_invalid",
    ),
    (
        "routes_value_num",
        r#"{"version":"v","default_placement":"a","routes":{"k":1},"placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "parse_error",
    ),
    (
        "rps_huge",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","rate_limit":{"requests_per_second":1e400,"burst":1,"per":"placement"}}}}"#,
        "parse_error",
    ),
    (
        "rps_string",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","rate_limit":{"requests_per_second":"5","burst":1,"per":"placement"}}}}"#,
        "parse_error",
    ),
    (
        "surrogate_key",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","\ud800":1}}}"#,
        "unknown_field",
    ),
    (
        "surrogate_pair_dup",
        r#"{"version":"v","default_placement":"a","routes":{"\ud83d\ude00":"a","😀":"a"},"placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "parse_error",
    ),
    (
        "timeouts_array",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1","timeouts":[]}}}"#,
        "parse_error",
    ),
    (
        "type_then_unknown",
        r#"{"version":5,"bogus":1,"default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "parse_error",
    ),
    (
        "unknown_then_null",
        r#"{"bogus":1,"version":null,"default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "unknown_field",
    ),
    (
        "unknown_then_syntax",
        r#"{"bogus":1,"version":"v",,}"#,
        "unknown_field",
    ),
    (
        "unknown_then_type",
        r#"{"bogus":1,"version":5,"default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "unknown_field",
    ),
    (
        "version_unicode_escape",
        r#"{"version":"\u0076","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}}"#,
        "ok",
    ),
    (
        "ws_trailing",
        r#"{"version":"v","default_placement":"a","placements":{"a":{"kind":"shared","endpoint":"http://h:1"}}} 
	
"#,
        "ok",
    ),
];

#[test]
fn edge_cases_get_the_code_go_gives() {
    let mismatches: Vec<String> = GO_PARITY_CASES
        .iter()
        .filter(|(_, doc, want)| outcome(doc.as_bytes()) != *want)
        .map(|(name, doc, want)| {
            format!("{name}: want {want}, got {:?}", parse(doc.as_bytes()).err())
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn bytes_outside_json_strings_and_control_characters_are_parse_errors() {
    let bom = [b"\xef\xbb\xbf".as_slice(), MINIMAL.as_bytes()].concat();
    assert_eq!(outcome(&bom), code::PARSE_ERROR);
    assert_eq!(
        outcome(MINIMAL.replacen("\"v\"", "\"v\u{1}\"", 1).as_bytes()),
        code::PARSE_ERROR
    );
}

#[test]
fn invalid_utf8_in_a_string_is_read_as_u_fffd_like_go() {
    let doc = MINIMAL.replacen("\"v\"", "\"v\u{0}\"", 1).into_bytes();
    let doc: Vec<u8> = doc.iter().map(|&b| if b == 0 { 0xff } else { b }).collect();
    assert_eq!(outcome(&doc), code::VERSION_MISSING);
}

#[test]
fn deep_values_end_at_the_first_fault_without_recursion() {
    // Under an unknown field the value is never read, however deep.
    assert_eq!(
        outcome(nested_unknown(100_000).as_bytes()),
        code::UNKNOWN_FIELD
    );
    // Where an object or a string is expected, an array is a type error at once.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let doc = MINIMAL.replacen(r#""kind":"shared""#, &format!(r#""kind":{deep}"#), 1);
    assert_eq!(outcome(doc.as_bytes()), code::PARSE_ERROR);
}

#[test]
fn the_first_fault_in_document_order_wins() {
    let with = |prefix: &str| MINIMAL.replacen('{', &format!("{{{prefix},"), 1);
    assert_eq!(
        outcome(with(r#""zz":1,"version":null"#).as_bytes()),
        code::UNKNOWN_FIELD
    );
    assert_eq!(
        outcome(with(r#""routes":null,"zz":1"#).as_bytes()),
        code::PARSE_ERROR
    );
    assert_eq!(
        outcome(with(r#""routes":{"k":"a","k":"a"},"zz":1"#).as_bytes()),
        code::PARSE_ERROR
    );
    assert_eq!(
        outcome(with(r#""zz":1,"routes":{"k":"a","k":"a"}"#).as_bytes()),
        code::UNKNOWN_FIELD
    );
    // A duplicate placement is caught at its key, before its value is read.
    let doc = MINIMAL.replacen(
        r#""a":{"#,
        r#""a":{"kind":"shared","endpoint":"http://h:1"},"a":{"zz":1,"#,
        1,
    );
    assert_eq!(outcome(doc.as_bytes()), code::PARSE_ERROR);
    // Nulls where an optional object may stand.
    let doc = MINIMAL.replacen(r#""kind""#, r#""retry":null,"kind""#, 1);
    assert_eq!(outcome(doc.as_bytes()), code::PARSE_ERROR);
    let doc = MINIMAL.replacen(r#""kind""#, r#""timeouts":{"connect_ms":null},"kind""#, 1);
    assert_eq!(outcome(doc.as_bytes()), code::PARSE_ERROR);
    // Trailing data is looked at only after the document.
    assert_eq!(
        outcome(format!("{MINIMAL} {{}}").as_bytes()),
        code::PARSE_ERROR
    );
    assert_eq!(outcome(format!("{MINIMAL}\n\t ").as_bytes()), "ok");
}

#[test]
fn struct_values_must_be_objects_not_arrays() {
    let doc = MINIMAL.replacen(
        r#""endpoint":"http://h:1""#,
        r#""endpoint":"http://h:1","health_check":["/h",1000,500,2,2]"#,
        1,
    );
    assert_eq!(outcome(doc.as_bytes()), code::PARSE_ERROR);
    assert_eq!(outcome(b"[]"), code::PARSE_ERROR);
}

#[test]
fn defaults_and_helpers() {
    let config = parse(MINIMAL.as_bytes()).unwrap();
    let p = &config.placements["a"];
    assert_eq!(p.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(p.response_header_timeout(), DEFAULT_RESPONSE_HEADER_TIMEOUT);
    assert_eq!(p.max_attempts(), 1);
    assert_eq!(p.endpoint_host_port(), ("h", 1));
    assert_eq!(p.fallback, None);

    let doc = MINIMAL.replacen(
        r#""endpoint":"http://h:1""#,
        r#""endpoint":"http://[::1]:8080/","fallback":"","timeouts":{"connect_ms":250},"retry":{"max_attempts":3}"#,
        1,
    );
    let config = parse(doc.as_bytes()).unwrap();
    assert!(config.routes.is_empty());
    let p = &config.placements["a"];
    assert_eq!(p.connect_timeout(), Duration::from_millis(250));
    assert_eq!(p.response_header_timeout(), DEFAULT_RESPONSE_HEADER_TIMEOUT);
    assert_eq!(p.max_attempts(), 3);
    assert_eq!(p.endpoint_host_port(), ("::1", 8080));
    assert_eq!(p.fallback, None);
}

#[test]
fn serialises_like_go_marshal_and_round_trips() {
    let doc = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/examples/demo.json"
    ))
    .unwrap();
    let config = parse(&doc).unwrap();
    let json = serde_json::to_value(&config).unwrap();
    let tier1 = &json["placements"]["tier1"];
    assert_eq!(
        tier1["rate_limit"]["requests_per_second"].to_string(),
        "5000"
    );
    assert_eq!(tier1["kind"], "shared");
    assert_eq!(tier1["rate_limit"]["per"], "routing_key");
    // omitempty fields stay out, as in Go's Marshal; routes is always there.
    let minimal = serde_json::to_value(parse(MINIMAL.as_bytes()).unwrap()).unwrap();
    assert_eq!(minimal["routes"], serde_json::json!({}));
    assert!(json["placements"]["tier3"].get("fallback").is_none());
    assert!(json["placements"]["tier3"]
        .get("concurrency_limit")
        .is_none());
    let again = parse(&serde_json::to_vec(&config).unwrap()).unwrap();
    assert_eq!(again, config);
}

#[test]
fn error_display_starts_with_the_code() {
    let err = parse(b"{").unwrap_err();
    assert_eq!(err.code, code::PARSE_ERROR);
    assert!(err.to_string().starts_with("parse_error: "));
}
