//! Process start-up of the Pingora cell router: flags (contract §5), the
//! first config, the control runtime (config source, control plane, health
//! checks), the Pingora server (proxy and admin services) and its shutdown.
//!
//! Flags are parsed with clap's derive API: pingora-core already depends on
//! clap with `derive`, so it costs no build time, and it gives exact
//! `--flag VALUE` handling, `--help` and exit status 2 on a usage error.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{BorrowedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use pingora::apps::HttpServerOptions;
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use socket2::SockRef;
use tokio::signal::unix::{signal, Signal, SignalKind};

use pingora_router::config_source::{ConfigSink, Source};
use pingora_router::control_plane::ControlPlaneClient;
use pingora_router::guard::{self, AdmitFilter, ClientLimits, GuardedApp, Registry};
use pingora_router::logs::{self, AccessLog};
use pingora_router::proxy::{self, Router};
use pingora_router::snapshot::SnapshotStore;
use pingora_router::{admin, config_source, control_plane, metrics};

/// Exit status for a missing or invalid config at startup (contract §5).
const EXIT_CONFIG: i32 = 2;
/// How long shutdown waits for the control-plane close frame to go out.
const CONTROL_PLANE_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Idle upstream connections kept across all placements.
const UPSTREAM_IDLE_POOL: usize = 4096;

/// Exit status when the router cannot start for another reason (a listen
/// address in use, ...).
const EXIT_STARTUP: i32 = 1;

#[derive(Parser, Debug)]
#[command(name = "pingora-router", about = "cellbench cell router on Pingora")]
struct Flags {
    /// Config document: the bootstrap and, without a control plane, the watched source.
    /// Required; checked by hand so that its absence is `config_missing` (exit 2), as in Go.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Proxy listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Admin listen address (/healthz, /debug/*, /metrics).
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin: String,
    /// Control plane WebSocket URL, e.g. ws://127.0.0.1:8081/connect.
    #[arg(long = "control-plane")]
    control_plane: Option<String>,
    /// Bearer token for the control plane (visible in ps: prefer
    /// --control-plane-token-file or CELLBENCH_CP_TOKEN).
    #[arg(long = "control-plane-token")]
    control_plane_token: Option<String>,
    /// File holding the control-plane bearer token (trailing newline ignored).
    #[arg(long = "control-plane-token-file")]
    control_plane_token_file: Option<PathBuf>,
    /// Node id announced to the control plane (default: the host name and pid).
    #[arg(long = "node-id")]
    node_id: Option<String>,
    /// Access log: stdout, off, or a file path.
    #[arg(long = "access-log", default_value = "stdout")]
    access_log: String,
    /// Proxy worker threads (default: all cores).
    #[arg(long)]
    workers: Option<usize>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long = "drain-timeout-ms", default_value_t = 5000)]
    drain_timeout_ms: u64,
    /// Time a client has to send a whole request head (from the accept, or
    /// from its first byte on a kept-alive connection).
    #[arg(long = "client-head-timeout-ms", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    client_head_timeout_ms: u64,
    /// How long a kept-alive client connection may wait for its next request.
    #[arg(long = "client-idle-timeout-ms", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    client_idle_timeout_ms: u64,
    /// Longest pause allowed while a client sends a request body.
    #[arg(long = "client-body-idle-timeout-ms", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    client_body_idle_timeout_ms: u64,
    /// Client connections kept open at most; 0 = (RLIMIT_NOFILE - 64) / 2.
    #[arg(long = "max-client-connections", default_value_t = 0)]
    max_client_connections: u64,
    /// Client connections closed at --max-client-connections per second at
    /// most (shed or refused; newcomers wait in the listen backlog
    /// meanwhile); 0 = no limit.
    #[arg(long = "client-shed-rate", default_value_t = guard::DEFAULT_SHED_RATE)]
    client_shed_rate: u32,
}

impl Flags {
    /// The client-side settings; a cap of 0 is derived from the descriptor
    /// limit (raised to its hard limit first, as Go's runtime does).
    fn client_limits(&self) -> ClientLimits {
        let nofile = guard::raise_nofile_limit();
        ClientLimits {
            head_timeout: Duration::from_millis(self.client_head_timeout_ms),
            idle_timeout: Duration::from_millis(self.client_idle_timeout_ms),
            body_idle_timeout: Duration::from_millis(self.client_body_idle_timeout_ms),
            max_connections: match self.max_client_connections {
                0 => guard::max_connections_for(nofile),
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
            shed_rate: self.client_shed_rate,
        }
    }
}

fn main() {
    let flags = Flags::parse();
    let Some(config_path) = flags.config.clone() else {
        eprintln!("config_missing: --config is required");
        std::process::exit(EXIT_CONFIG);
    };
    // A bad token source is a flag error: exit 2, as in Go.
    let token = match control_plane::resolve_token(
        flags.control_plane_token.clone(),
        flags.control_plane_token_file.as_deref(),
        std::env::var(control_plane::TOKEN_ENV).ok(),
    ) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let doc = match std::fs::read(&config_path) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("config_missing: {}: {e}", config_path.display());
            std::process::exit(EXIT_CONFIG);
        }
    };

    // Config sources, the control-plane client and the health checks run
    // here, away from the proxy threads.
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cellbench-control")
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the control runtime: {e}");
            std::process::exit(EXIT_STARTUP);
        });

    // A rejected bootstrap document is logged (config_rejected) by the store.
    let store = match SnapshotStore::bootstrap(&doc, Source::File, control.handle().clone()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(EXIT_CONFIG);
        }
    };

    let access_log = match AccessLog::open(&flags.access_log) {
        Ok(access_log) => access_log,
        Err(e) => {
            eprintln!("access log {}: {e}", flags.access_log);
            std::process::exit(EXIT_STARTUP);
        }
    };

    // Fail early and clearly when an address is taken: Pingora would panic
    // on a service thread and keep the process alive without a listener.
    for addr in [&flags.listen, &flags.admin] {
        if let Err(e) = TcpListener::bind(addr.as_str()) {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(EXIT_STARTUP);
        }
    }

    let control_plane = match start_config_source(&flags, token, &control, &store, &doc) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cannot start the config source: {e}");
            std::process::exit(EXIT_STARTUP);
        }
    };

    // Installed now, not when Pingora first polls for signals: a SIGTERM
    // during start-up is then a drain too, not the default instant death.
    let drain = Duration::from_millis(flags.drain_timeout_ms);
    let listen_addrs: Vec<SocketAddr> = flags
        .listen
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    let drain_on_signal =
        match DrainOnSignal::install(&control, drain, listen_addrs, control_plane, access_log) {
            Ok(watch) => watch,
            Err(e) => {
                eprintln!("cannot install signal handlers: {e}");
                std::process::exit(EXIT_STARTUP);
            }
        };

    let threads = flags
        .workers
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let conf = server_conf(threads, drain);
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    // ServerConf.threads is per service: the admin listener needs one, not
    // one per core taken from the proxy.
    let mut admin = admin::service(&flags.admin, store.clone());
    admin.threads = Some(1);
    server.add_service(admin);
    let limits = flags.client_limits();
    let mut proxy = http_proxy(
        &server.configuration,
        Router::new(store)
            .with_client_limits(limits)
            .with_access_log(access_log),
    );
    // pingora-proxy answers CONNECT with a bare 405 before any hook runs;
    // letting it through lets `request_filter` refuse it with the contract's
    // 501 `method_not_supported` (and close the connection), so nothing is
    // ever tunnelled.
    let mut options = HttpServerOptions::default();
    options.allow_connect_method_proxying = true;
    proxy.server_options = Some(options);
    // Every client connection counted and guarded (head, idle, the cap).
    let registry = Registry::new(limits);
    let stats = Arc::clone(&registry);
    metrics::read_clients_from(move || stats.stats());
    let filter = Arc::new(AdmitFilter::new(Arc::clone(&registry)));
    let guarded = GuardedApp::new(proxy, registry);
    let mut service = Service::new("cellbench proxy".to_string(), guarded);
    service.set_connection_filter(filter);
    service.add_tcp(&flags.listen);
    server.add_service(service);

    server.run(RunArgs {
        shutdown_signal: Box::new(drain_on_signal),
    });
    // Reached only if Pingora's own grace period ran out before the drain
    // watcher exited the process.
    access_log.flush();
    std::process::exit(0);
}

/// Pingora's server settings, built in code: Pingora neither parses its own
/// command line nor reads a YAML file here.
fn server_conf(threads: usize, drain: Duration) -> ServerConf {
    let drain_secs = drain.as_millis().div_ceil(1000) as u64;
    ServerConf {
        threads,
        // Pingora sleeps this long after SIGTERM before stopping its
        // runtimes (default 300 s). The drain watcher normally exits sooner,
        // as soon as no request is in flight; this is the upper bound.
        grace_period_seconds: Some(drain_secs),
        graceful_shutdown_timeout_seconds: Some(0),
        max_retries: proxy::MAX_PINGORA_RETRIES,
        // Idle upstream connections kept for reuse, all placements together
        // (default 128). The Go router keeps up to 1024 per upstream; under
        // benchmark concurrency a small pool turns into a connect per request.
        upstream_keepalive_pool_size: UPSTREAM_IDLE_POOL,
        ..ServerConf::default()
    }
}

/// Starts the config source on the control runtime: the control-plane
/// client when one is set (the file was only the bootstrap), else the file
/// watcher with SIGHUP. Either way SIGHUP is handled before the proxy
/// accepts, so it never takes its default, fatal action.
fn start_config_source(
    flags: &Flags,
    token: Option<String>,
    control: &tokio::runtime::Runtime,
    store: &Arc<SnapshotStore>,
    bootstrap: &[u8],
) -> std::io::Result<Option<ControlPlaneClient>> {
    let sink: Arc<dyn ConfigSink> = store.clone();
    match &flags.control_plane {
        Some(url) => {
            config_source::spawn_hangup_ignorer(control.handle())?;
            let node_id = flags.node_id.clone().unwrap_or_default();
            let options = control_plane::Options::new(url.clone(), token, node_id);
            Ok(Some(control_plane::spawn(control.handle(), options, sink)))
        }
        None => {
            let path = flags.config.clone().expect("checked in main");
            config_source::FileSource::new(path, bootstrap).spawn(control.handle(), sink)?;
            Ok(None)
        }
    }
}

/// Takes over Pingora's signal handling: SIGTERM and SIGINT both drain
/// (Pingora treats SIGINT as a fast shutdown that drops in-flight requests,
/// and SIGQUIT as a socket hand-over to a new process, which this router does
/// not do). SIGHUP is the config source's (reload), registered before the
/// server starts so it never takes its default, fatal action.
struct DrainOnSignal {
    drain: Duration,
    /// The proxy's listen addresses, closed to new connections on shutdown.
    listen: Vec<SocketAddr>,
    /// Told on shutdown, so the control plane sees this router leave at
    /// once (a 1001 close, as the Go client sends).
    control_plane: Mutex<Option<ControlPlaneClient>>,
    /// SIGTERM and SIGINT streams, registered on the control runtime (whose
    /// driver delivers them); taken by the one `recv` Pingora makes.
    signals: Mutex<Option<(Signal, Signal)>>,
    /// Flushed before the process exits.
    access_log: AccessLog,
}

impl DrainOnSignal {
    fn install(
        control: &tokio::runtime::Runtime,
        drain: Duration,
        listen: Vec<SocketAddr>,
        control_plane: Option<ControlPlaneClient>,
        access_log: AccessLog,
    ) -> std::io::Result<Self> {
        let _entered = control.enter();
        let signals = (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        );
        Ok(DrainOnSignal {
            drain,
            listen,
            control_plane: Mutex::new(control_plane),
            signals: Mutex::new(Some(signals)),
            access_log,
        })
    }
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        let taken = self
            .signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some((mut term, mut int)) = taken else {
            // Pingora asks once per run; a second ask has nothing to wait on.
            return std::future::pending().await;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let drain_ms = self.drain.as_millis().to_string();
        logs::event(
            "shutdown",
            &[("signal", name), ("drain_timeout_ms", &drain_ms)],
        );
        let deadline = Instant::now() + self.drain;
        let listen = self.listen.clone();
        let access_log = self.access_log;
        let control_plane = self
            .control_plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Pingora stops accepting once this returns, then waits out its whole
        // grace period even when nothing is in flight; exit as soon as the
        // last request is done instead.
        std::thread::spawn(move || {
            // After Pingora's accept loops have seen the shutdown.
            std::thread::sleep(Duration::from_millis(20));
            refuse_new_connections(&listen);
            if let Some(client) = control_plane {
                client.close(CONTROL_PLANE_CLOSE_WAIT);
            }
            while proxy::active_requests() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            access_log.flush();
            std::process::exit(0);
        });
        ShutdownSignal::GracefulTerminate
    }
}

/// Pingora stops calling accept() on shutdown but keeps its listening sockets
/// open until the process exits (it holds them for a graceful upgrade), so the
/// kernel would keep completing handshakes that are never served — a client
/// would wait, then be reset at exit. Shutting the listening socket down makes
/// new connections fail at once, as the Go router's closed listener does.
/// The socket is found among this process's descriptors by its address.
fn refuse_new_connections(listen: &[SocketAddr]) {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in fds.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only inspected and shut down, never
        // closed; if it was closed (or reused) meanwhile, the calls fail or
        // the address check below does not match.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&fd);
        let is_proxy_listener = socket.is_listener().unwrap_or(false)
            && socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .is_some_and(|a| listen.contains(&a));
        if is_proxy_listener {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}
