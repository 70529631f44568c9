//! Per-placement protections: active health checks, the circuit breaker, the
//! admission rate limit and the concurrency limit.

pub mod breaker;
pub mod concurrency;
pub mod health;
pub mod rate_limit;
