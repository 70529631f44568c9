//! The cellbench config document (contract §1): parsing and strict
//! validation with exactly the rules, codes and check order of Go's
//! `cellbench/config` package, so that one document means one thing in both
//! routers and in the control plane. The shared vectors in
//! `config/testdata/` hold both implementations to that (tests/vectors.rs).
//!
//! Parsing, like Go's `Parse`:
//! 1. [`normalize`]: Go's decoder repairs (invalid UTF-8, lone surrogate
//!    escapes) are applied to the text;
//! 2. one typed decoding pass with serde, in document order: the first fault
//!    wins — a syntax error, null, duplicate key, wrong type or trailing data
//!    is `parse_error`, a field not in the schema (exact names) is
//!    `unknown_field`. Absent fields decode to zero values, as in Go, so every
//!    semantic fault reaches the next step and gets its own code;
//! 3. [`validate`]: the semantic rules, in Go's fixed order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

mod normalize;

/// The largest config document accepted (16 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;
pub const MAX_VERSION_BYTES: usize = 128;
pub const MAX_ROUTE_KEY_BYTES: usize = 256;
pub const MAX_PLACEMENT_NAME_BYTES: usize = 64;
pub const MAX_ATTEMPTS_LIMIT: i64 = 5;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_millis(15000);
/// nginx's proxy_read_timeout: 60 s between two reads of a response body.
pub const DEFAULT_RESPONSE_BODY_IDLE_TIMEOUT: Duration = Duration::from_millis(60000);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1;

/// Rejection codes (contract §1), named as in Go's `config/errors.go`.
pub mod code {
    pub const PARSE_ERROR: &str = "parse_error";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const VERSION_MISSING: &str = "version_missing";
    pub const NO_PLACEMENTS: &str = "no_placements";
    pub const PLACEMENT_NAME_INVALID: &str = "placement_name_invalid";
    pub const DEFAULT_PLACEMENT_UNKNOWN: &str = "default_placement_unknown";
    pub const ROUTE_KEY_INVALID: &str = "route_key_invalid";
    pub const ROUTE_PLACEMENT_UNKNOWN: &str = "route_placement_unknown";
    pub const KIND_INVALID: &str = "kind_invalid";
    pub const ENDPOINT_INVALID: &str = "endpoint_invalid";
    pub const FALLBACK_UNKNOWN: &str = "fallback_unknown";
    pub const FALLBACK_CYCLE: &str = "fallback_cycle";
    pub const TIMEOUTS_INVALID: &str = "timeouts_invalid";
    pub const HEALTH_CHECK_INVALID: &str = "health_check_invalid";
    pub const CIRCUIT_BREAKER_INVALID: &str = "circuit_breaker_invalid";
    pub const RATE_LIMIT_INVALID: &str = "rate_limit_invalid";
    pub const RETRY_INVALID: &str = "retry_invalid";
    pub const LIMIT_INVALID: &str = "limit_invalid";
}

/// A rejected document: one contract code and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub code: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// One validated config document. Immutable once [`parse`] returned it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub version: String,
    pub default_placement: String,
    pub routes: BTreeMap<String, String>,
    pub placements: BTreeMap<String, Placement>,
}

/// A named upstream cell and the policies that guard it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    pub kind: Kind,
    pub endpoint: String,
    /// `None` for both an absent and an empty `fallback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// 0 = no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub concurrency_limit: i64,
    /// 0 = no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_request_body_bytes: i64,
}

/// The placement kind; a matched route's reason is its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shared,
    Dedicated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shared => "shared",
            Kind::Dedicated => "dedicated",
        }
    }
}

/// The only sub-object whose fields are individually optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(
        default,
        deserialize_with = "go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_ms: Option<i64>,
    #[serde(
        default,
        deserialize_with = "go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_header_ms: Option<i64>,
    #[serde(
        default,
        deserialize_with = "go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_body_idle_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default)]
    pub path: String,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub interval_ms: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub timeout_ms: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub unhealthy_threshold: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub healthy_threshold: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default, deserialize_with = "go_int::plain")]
    pub failure_threshold: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub open_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimit {
    #[serde(serialize_with = "serialize_go_float")]
    pub requests_per_second: f64,
    pub burst: i64,
    pub per: RateLimitScope,
}

/// What a rate limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScope {
    RoutingKey,
    Placement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default, deserialize_with = "go_int::plain")]
    pub max_attempts: i64,
}

impl Placement {
    /// The effective connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.timeouts
            .as_ref()
            .and_then(|t| t.connect_ms)
            .map_or(DEFAULT_CONNECT_TIMEOUT, millis)
    }

    /// The effective time allowed from sending a request to its response head.
    pub fn response_header_timeout(&self) -> Duration {
        self.timeouts
            .as_ref()
            .and_then(|t| t.response_header_ms)
            .map_or(DEFAULT_RESPONSE_HEADER_TIMEOUT, millis)
    }

    /// The effective longest pause between two reads of a response body.
    pub fn response_body_idle_timeout(&self) -> Duration {
        self.timeouts
            .as_ref()
            .and_then(|t| t.response_body_idle_ms)
            .map_or(DEFAULT_RESPONSE_BODY_IDLE_TIMEOUT, millis)
    }

    /// The effective number of upstream attempts (1 = no retry).
    pub fn max_attempts(&self) -> u32 {
        self.retry
            .as_ref()
            .map_or(DEFAULT_MAX_ATTEMPTS, |r| r.max_attempts as u32)
    }

    /// Host (IPv6 without brackets) and port of the endpoint.
    pub fn endpoint_host_port(&self) -> (&str, u16) {
        split_endpoint(&self.endpoint).expect("endpoint was validated by parse")
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms as u64)
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go's encoding/json writes an integral float64 without a fraction
/// (`500`, not `500.0`); /debug/config must look the same in both routers.
fn serialize_go_float<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Decodes and validates a document. A rejection always carries one of the
/// contract's codes.
pub fn parse(doc: &[u8]) -> Result<Config, ConfigError> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(ConfigError::new(
            code::PARSE_ERROR,
            format!(
                "document is {} bytes, more than the {} allowed",
                doc.len(),
                MAX_DOCUMENT_BYTES
            ),
        ));
    }
    let doc = normalize::normalize(doc);
    let raw: ConfigDoc = decode(&doc)?;
    validate(raw)
}

fn decode(doc: &[u8]) -> Result<ConfigDoc, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_slice(doc);
    Object::<ConfigDoc>::deserialize(&mut deserializer)
        .and_then(|doc| deserializer.end().map(|()| doc.0))
        .map_err(|err| {
            let text = err.to_string();
            match text.strip_prefix("unknown field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    ConfigError::new(code::UNKNOWN_FIELD, format!("unknown field {name:?}"))
                }
                None => ConfigError::new(code::PARSE_ERROR, text),
            }
        })
}

// The document as decoded, before validation: free-form strings where the
// validated types have enums, zero values for absent fields (as Go decodes),
// so that every semantic fault reaches `validate` and gets its own code.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    #[serde(default)]
    version: String,
    #[serde(default)]
    default_placement: String,
    #[serde(default, deserialize_with = "strict::unique_map")]
    routes: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "strict::unique_map")]
    placements: BTreeMap<String, Object<PlacementDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementDoc {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    fallback: String,
    #[serde(default, deserialize_with = "strict::present")]
    timeouts: Option<Object<Timeouts>>,
    #[serde(default, deserialize_with = "strict::present")]
    health_check: Option<Object<HealthCheck>>,
    #[serde(default, deserialize_with = "strict::present")]
    circuit_breaker: Option<Object<CircuitBreaker>>,
    #[serde(default, deserialize_with = "strict::present")]
    rate_limit: Option<Object<RateLimitDoc>>,
    #[serde(default, deserialize_with = "strict::present")]
    retry: Option<Object<Retry>>,
    #[serde(default, deserialize_with = "go_int::plain")]
    concurrency_limit: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    max_request_body_bytes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitDoc {
    #[serde(default)]
    requests_per_second: f64,
    #[serde(default, deserialize_with = "go_int::plain")]
    burst: i64,
    #[serde(default)]
    per: String,
}

/// What serde alone would let through and Go's strict walk does not.
mod strict {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Error, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    /// An optional field that, when present, must not be `null` (serde reads
    /// null as absent; the contract rejects it so that `null` never means
    /// two things).
    pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }

    /// A JSON object as a map that rejects a repeated key, at the key (serde
    /// would let the last one win).
    pub fn unique_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, V>, D::Error> {
        struct UniqueMap<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
            type Value = BTreeMap<String, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(A::Error::custom(format!("duplicate key {key:?}")));
                    }
                    let value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(UniqueMap(PhantomData))
    }
}

/// A JSON object decoded into `T`. serde's derived structs also accept a
/// JSON array of the field values; Go's decoder (and the contract) take only
/// objects, so struct-typed values go through this wrapper.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectOnly(deserializer)).map(Object)
    }
}

/// Forwards everything, but asks for a map where a struct is wanted.
struct ObjectOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Integer fields decode like Go's `strconv.ParseInt` on the number's text:
/// `-0` is 0, while `1.0`, `1e3` and anything outside int64 are type errors.
/// (serde_json alone reads `-0` as a float, so the raw text is parsed here.)
mod go_int {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::value::RawValue;

    pub fn plain<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        text.parse::<i64>().map_err(|_| {
            let kind = match text.as_bytes().first() {
                Some(b'-' | b'0'..=b'9') => "number",
                Some(b'"') => "string",
                Some(b'{') => "object",
                Some(b'[') => "array",
                _ => "bool",
            };
            D::Error::custom(format!("expected int64, got JSON {kind} {text:.40}"))
        })
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        plain(deserializer).map(Some)
    }
}

fn validate(doc: ConfigDoc) -> Result<Config, ConfigError> {
    let err = |code, message: String| Err(ConfigError::new(code, message));
    if doc.version.is_empty()
        || doc.version.len() > MAX_VERSION_BYTES
        || !is_visible_ascii(&doc.version)
    {
        return err(
            code::VERSION_MISSING,
            format!("version must be 1 to {MAX_VERSION_BYTES} visible ASCII characters"),
        );
    }
    if doc.placements.is_empty() {
        return err(
            code::NO_PLACEMENTS,
            "placements must name at least one placement".into(),
        );
    }
    // BTreeMap iterates bytewise-sorted, the order Go's sort.Strings gives.
    for name in doc.placements.keys() {
        if !is_placement_name(name) {
            return err(
                code::PLACEMENT_NAME_INVALID,
                format!(
                    "placement name {name:?} must be 1 to {MAX_PLACEMENT_NAME_BYTES} characters of A-Z a-z 0-9 . _ -"
                ),
            );
        }
    }
    if !doc.placements.contains_key(&doc.default_placement) {
        return err(
            code::DEFAULT_PLACEMENT_UNKNOWN,
            format!(
                "default_placement {:?} is not a placement",
                doc.default_placement
            ),
        );
    }
    for (key, target) in &doc.routes {
        if key.is_empty() || key.len() > MAX_ROUTE_KEY_BYTES || !is_visible_ascii(key) {
            return err(
                code::ROUTE_KEY_INVALID,
                format!(
                    "route key {key:?} must be 1 to {MAX_ROUTE_KEY_BYTES} visible ASCII characters"
                ),
            );
        }
        if !doc.placements.contains_key(target) {
            return err(
                code::ROUTE_PLACEMENT_UNKNOWN,
                format!("route {key:?} names placement {target:?}, which does not exist"),
            );
        }
    }
    let mut placements = BTreeMap::new();
    for (name, p) in &doc.placements {
        placements.insert(name.clone(), validate_placement(&doc, name, &p.0)?);
    }
    for name in placements.keys() {
        check_fallback_cycle(&placements, name)?;
    }
    Ok(Config {
        version: doc.version,
        default_placement: doc.default_placement,
        routes: doc.routes,
        placements,
    })
}

fn validate_placement(
    doc: &ConfigDoc,
    name: &str,
    p: &PlacementDoc,
) -> Result<Placement, ConfigError> {
    let fail = |code, message: String| {
        Err(ConfigError::new(
            code,
            format!("placement {name:?}: {message}"),
        ))
    };
    let kind = match p.kind.as_str() {
        "shared" => Kind::Shared,
        "dedicated" => Kind::Dedicated,
        other => {
            return fail(
                code::KIND_INVALID,
                format!("kind {other:?} must be \"shared\" or \"dedicated\""),
            )
        }
    };
    if let Err(why) = split_endpoint(&p.endpoint) {
        return fail(
            code::ENDPOINT_INVALID,
            format!("endpoint {:?}: {why}", p.endpoint),
        );
    }
    // An empty fallback means none, as if the field were absent.
    let fallback = match p.fallback.as_str() {
        "" => None,
        f if f == name => {
            return fail(
                code::FALLBACK_UNKNOWN,
                "fallback names the placement itself".into(),
            )
        }
        f if !doc.placements.contains_key(f) => {
            return fail(
                code::FALLBACK_UNKNOWN,
                format!("fallback {f:?} is not a placement"),
            )
        }
        f => Some(f.to_owned()),
    };
    if let Some(Object(t)) = &p.timeouts {
        for (field, value) in [
            ("connect_ms", t.connect_ms),
            ("response_header_ms", t.response_header_ms),
            ("response_body_idle_ms", t.response_body_idle_ms),
        ] {
            if let Some(v) = value.filter(|v| *v <= 0) {
                return fail(
                    code::TIMEOUTS_INVALID,
                    format!("timeouts.{field} must be a positive integer, got {v}"),
                );
            }
        }
    }
    if let Some(Object(h)) = &p.health_check {
        let why = if !h.path.starts_with('/') {
            Some(format!("health_check.path {:?} must start with /", h.path))
        } else if h.interval_ms <= 0 || h.timeout_ms <= 0 {
            Some("health_check interval_ms and timeout_ms must be positive".into())
        } else if h.timeout_ms >= h.interval_ms {
            Some(format!(
                "health_check.timeout_ms ({}) must be less than interval_ms ({})",
                h.timeout_ms, h.interval_ms
            ))
        } else if h.unhealthy_threshold < 1 || h.healthy_threshold < 1 {
            Some("health_check thresholds must be at least 1".into())
        } else {
            None
        };
        if let Some(why) = why {
            return fail(code::HEALTH_CHECK_INVALID, why);
        }
    }
    if let Some(Object(b)) = &p.circuit_breaker {
        if b.failure_threshold < 1 || b.open_ms < 1 {
            return fail(
                code::CIRCUIT_BREAKER_INVALID,
                "circuit_breaker failure_threshold and open_ms must be at least 1".into(),
            );
        }
    }
    let rate_limit = match &p.rate_limit {
        None => None,
        Some(Object(r)) => {
            if r.requests_per_second <= 0.0 {
                return fail(
                    code::RATE_LIMIT_INVALID,
                    "rate_limit.requests_per_second must be positive".into(),
                );
            }
            if r.burst < 1 {
                return fail(
                    code::RATE_LIMIT_INVALID,
                    "rate_limit.burst must be at least 1".into(),
                );
            }
            let per = match r.per.as_str() {
                "routing_key" => RateLimitScope::RoutingKey,
                "placement" => RateLimitScope::Placement,
                other => {
                    return fail(
                        code::RATE_LIMIT_INVALID,
                        format!(
                            "rate_limit.per {other:?} must be \"routing_key\" or \"placement\""
                        ),
                    )
                }
            };
            Some(RateLimit {
                requests_per_second: r.requests_per_second,
                burst: r.burst,
                per,
            })
        }
    };
    if let Some(Object(r)) = &p.retry {
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&r.max_attempts) {
            return fail(
                code::RETRY_INVALID,
                format!(
                    "retry.max_attempts {} must be between 1 and {MAX_ATTEMPTS_LIMIT}",
                    r.max_attempts
                ),
            );
        }
    }
    if p.concurrency_limit < 0 || p.max_request_body_bytes < 0 {
        return fail(
            code::LIMIT_INVALID,
            "concurrency_limit and max_request_body_bytes must not be negative".into(),
        );
    }
    Ok(Placement {
        kind,
        endpoint: p.endpoint.clone(),
        fallback,
        timeouts: p.timeouts.as_ref().map(|t| t.0.clone()),
        health_check: p.health_check.as_ref().map(|h| h.0.clone()),
        circuit_breaker: p.circuit_breaker.as_ref().map(|b| b.0.clone()),
        rate_limit,
        retry: p.retry.as_ref().map(|r| r.0.clone()),
        concurrency_limit: p.concurrency_limit,
        max_request_body_bytes: p.max_request_body_bytes,
    })
}

fn check_fallback_cycle(
    placements: &BTreeMap<String, Placement>,
    start: &str,
) -> Result<(), ConfigError> {
    let mut path = vec![start];
    let mut next = placements[start].fallback.as_deref();
    while let Some(name) = next {
        let looped = path.contains(&name);
        path.push(name);
        if looped {
            return Err(ConfigError::new(
                code::FALLBACK_CYCLE,
                format!("fallback links loop: {}", path.join(" -> ")),
            ));
        }
        next = placements[name].fallback.as_deref();
    }
    Ok(())
}

/// Accepts exactly `http://HOST:PORT` with an optional trailing `/` and
/// returns (host, port): HOST is a DNS name, an IPv4 address or a bracketed
/// IPv6 address (returned without brackets); PORT is 1-65535 in decimal.
/// Hand-written, step for step as Go's `ValidateEndpoint` (which mirrors
/// `net.SplitHostPort`), because URL parsers differ in what they normalise.
fn split_endpoint(endpoint: &str) -> Result<(&str, u16), &'static str> {
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or("must start with http:// (TLS and other schemes are not supported)")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err("must have no userinfo, path, query or fragment");
    }
    let (host, port) = split_host_port(rest).ok_or("must be host:port")?;
    // Decimal digits only: no sign, no leading zero.
    let decimal = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let port_number = Some(port)
        .filter(|p| decimal && !p.starts_with('0') && p.len() <= 5)
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or("port must be 1-65535")?;
    if rest.starts_with('[') {
        match host.parse::<Ipv6Addr>() {
            Ok(ip) if ip.to_ipv4_mapped().is_none() => {}
            _ => return Err("bracketed host must be an IPv6 address"),
        }
    } else if !is_host_name(host) {
        return Err("host must be a DNS name or IPv4 address");
    }
    Ok((host, port_number))
}

/// Go's `net.SplitHostPort`: the port follows the last colon; a host in
/// brackets may contain colons; stray brackets are errors.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let last_colon = hostport.rfind(':')?;
    let (host, inner_start, inner_end) = if hostport.starts_with('[') {
        let close = hostport.find(']')?;
        if close + 1 != last_colon {
            return None;
        }
        (&hostport[1..close], 1, close + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[inner_start..].contains('[') || hostport[inner_end..].contains(']') {
        return None;
    }
    Some((host, &hostport[last_colon + 1..]))
}

fn is_host_name(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn is_placement_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PLACEMENT_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True when every byte is in 0x21..=0x7E.
fn is_visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
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
}
