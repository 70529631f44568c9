//! The semantic rules of a decoded config document, in Go's fixed order.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use super::decode::{ConfigDoc, Object, PlacementDoc};
use super::*;

pub(super) fn validate(doc: ConfigDoc) -> Result<Config, ConfigError> {
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

pub(super) fn validate_placement(
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

pub(super) fn check_fallback_cycle(
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
pub(super) fn split_endpoint(endpoint: &str) -> Result<(&str, u16), &'static str> {
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
pub(super) fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
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

pub(super) fn is_host_name(host: &str) -> bool {
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

pub(super) fn is_placement_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PLACEMENT_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True when every byte is in 0x21..=0x7E.
pub(super) fn is_visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
