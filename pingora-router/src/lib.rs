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

/// mimalloc for the whole process (the router binary, its tests and
/// benches): glibc's malloc and free were 17 % of the router's CPU at
/// saturation, per-thread free lists make them a few instructions each.
/// Go has its own allocator; this is the Rust side's equivalent choice.
/// The floor (examples/floor.rs) sets the same, so the floor/own split stays fair.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
