//! The floor under pingora-router: the least a Pingora proxy does per
//! request, as in Pingora's own `pingora-proxy/examples/`: one `ProxyHttp`
//! whose only hook returns one fixed peer, with the router's server
//! settings (threads, upstream keep-alive pool) and nothing else: no
//! routing, no headers, no logs, no metrics. The harness runs it as the
//! `pingora-floor` target, so a report can split pingora-router's cost into
//! Pingora's and its own.
//!
//!     cargo run --release --example floor -- --listen 127.0.0.1:8090 --upstream 127.0.0.1:9001 --workers 1

use async_trait::async_trait;
use clap::Parser;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

/// The router's allocator (its lib.rs), so that floor and router differ only
/// in what the router does per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Flags {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// The one upstream, host:port.
    #[arg(long)]
    upstream: String,
    /// Proxy worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

struct Floor {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let flags = Flags::parse();
    let conf = ServerConf {
        threads: flags.workers.max(1),
        // As pingora-router's (its main.rs): enough idle upstream
        // connections that benchmark concurrency never connects per request.
        upstream_keepalive_pool_size: 4096,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(
        &server.configuration,
        Floor {
            upstream: flags.upstream,
        },
    );
    proxy.add_tcp(&flags.listen);
    server.add_service(proxy);
    server.run_forever();
}
