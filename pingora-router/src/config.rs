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
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

mod decode;
mod normalize;
#[cfg(test)]
mod tests;
mod validate;

use decode::{decode, ConfigDoc};
use validate::{split_endpoint, validate};

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
        deserialize_with = "decode::go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_ms: Option<i64>,
    #[serde(
        default,
        deserialize_with = "decode::go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_header_ms: Option<i64>,
    #[serde(
        default,
        deserialize_with = "decode::go_int::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_body_idle_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default)]
    pub path: String,
    #[serde(default, deserialize_with = "decode::go_int::plain")]
    pub interval_ms: i64,
    #[serde(default, deserialize_with = "decode::go_int::plain")]
    pub timeout_ms: i64,
    #[serde(default, deserialize_with = "decode::go_int::plain")]
    pub unhealthy_threshold: i64,
    #[serde(default, deserialize_with = "decode::go_int::plain")]
    pub healthy_threshold: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default, deserialize_with = "decode::go_int::plain")]
    pub failure_threshold: i64,
    #[serde(default, deserialize_with = "decode::go_int::plain")]
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
    #[serde(default, deserialize_with = "decode::go_int::plain")]
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
