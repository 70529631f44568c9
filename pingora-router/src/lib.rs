//! cellbench's Pingora cell router: the library half (everything but process
//! start-up), so integration tests and benches can reach the modules.

pub mod admin;
pub mod config;
pub mod config_source;
pub mod control_plane;
pub mod guard;
pub mod logs;
pub mod metrics;
pub mod proxy;
pub mod resilience;
pub mod routing;
pub mod snapshot;
pub mod upstream_watch;
