//! The router side of the control-plane protocol (contract §7), as Go's
//! `controlplane/client`: one WebSocket to the control plane, a `hello`
//! first, every `config_snapshot` handed to the [`ConfigSink`] and answered
//! with `ack` or `nack`, reconnects with exponential backoff and jitter.
//!
//! It never sits on the request path: the router serves from its last good
//! snapshot whether or not the control plane is reachable.
//!
//! Events: `cp_connected` and `cp_disconnected` are logged here;
//! `config_applied` / `config_rejected` belong to the sink.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{ConfigError, MAX_DOCUMENT_BYTES};
use crate::config_source::{ConfigSink, Source};
use crate::logs::{self, Field};
use crate::metrics;

/// Read limit for frames from the control plane: the largest valid document
/// plus room for the envelope (Go: `protocol.MaxSnapshotFrameBytes`). A
/// bigger frame is refused from its header, never buffered.
pub const MAX_SNAPSHOT_FRAME_BYTES: usize = MAX_DOCUMENT_BYTES + (64 << 10);
/// The control plane pings every 5 s; this long without any frame means the
/// connection is dead.
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(15);
pub const RECONNECT_MIN: Duration = Duration::from_millis(200);
pub const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Why a stopped client ended its connection (also the close reason).
const STOPPING: &str = "router stopping";
/// Bounds the TCP connect plus the HTTP upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds one frame write (hello, ack, nack).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection must have lived for the next reconnect to start
/// again from the shortest backoff: a control plane that accepts and then
/// drops us at once should not be hammered.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The environment variable the control plane and both routers read the
/// bearer token from when no flag gives one (Go: `protocol.TokenEnv`). It, or
/// a token file, is the preferred way: a flag value shows in `ps`.
pub const TOKEN_ENV: &str = "CELLBENCH_CP_TOKEN";

/// Why no bearer token could be chosen.
#[derive(Debug)]
pub enum TokenError {
    FlagAndFile,
    UnreadableFile(PathBuf, std::io::Error),
    EmptyFile(PathBuf),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::FlagAndFile => write!(f, "give the token by flag or by file, not both"),
            TokenError::UnreadableFile(path, e) => write!(f, "token file {}: {e}", path.display()),
            TokenError::EmptyFile(path) => write!(f, "token file {} is empty", path.display()),
        }
    }
}

impl std::error::Error for TokenError {}

/// The bearer token, as Go's `protocol.ResolveToken`: the flag value, else
/// the file's contents without trailing CR/LF (as editors and `echo` leave
/// them), else `env` (the value of [`TOKEN_ENV`]); empty means none. A flag
/// with a file is refused, and so is an empty file: it would silently turn
/// authentication off.
pub fn resolve_token(
    flag: Option<String>,
    file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<String>, TokenError> {
    let flag = flag.filter(|t| !t.is_empty());
    match (flag, file) {
        (Some(_), Some(_)) => Err(TokenError::FlagAndFile),
        (Some(token), None) => Ok(Some(token)),
        (None, Some(path)) => {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| TokenError::UnreadableFile(path.to_owned(), e))?;
            match raw.trim_end_matches(['\r', '\n']) {
                "" => Err(TokenError::EmptyFile(path.to_owned())),
                token => Ok(Some(token.to_owned())),
            }
        }
        (None, None) => Ok(env.filter(|t| !t.is_empty())),
    }
}

/// Where and who to connect as.
#[derive(Debug, Clone)]
pub struct Options {
    /// e.g. `ws://127.0.0.1:8081/connect`
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// This router's name in the control plane's `/status`.
    pub node_id: String,
    pub silence_timeout: Duration,
}

impl Options {
    /// Options with the protocol's timing; an empty `node_id` becomes
    /// `<hostname>-<pid>` (as the Go client does).
    pub fn new(
        url: impl Into<String>,
        token: Option<String>,
        node_id: impl Into<String>,
    ) -> Options {
        let mut node_id = node_id.into();
        if node_id.is_empty() {
            node_id = default_node_id();
        }
        Options {
            url: url.into(),
            token,
            node_id,
            silence_timeout: SILENCE_TIMEOUT,
        }
    }
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "router".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The running client, to stop it at shutdown.
pub struct ControlPlaneClient {
    stop: watch::Sender<bool>,
    finished: Arc<(Mutex<bool>, Condvar)>,
}

impl ControlPlaneClient {
    /// Closes the connection with 1001 "router stopping" and stops
    /// reconnecting, waiting at most `wait`. As the Go client does when it
    /// stops: the control plane then marks this router gone at once instead
    /// of on a broken connection. Blocks: call it from a plain thread, not
    /// from a runtime worker.
    pub fn close(&self, wait: Duration) {
        let _ = self.stop.send(true);
        let (finished, changed) = &*self.finished;
        let guard = finished.lock().unwrap_or_else(|e| e.into_inner());
        let _ = changed.wait_timeout_while(guard, wait, |finished| !*finished);
    }
}

/// Starts the client on `runtime`; it keeps reconnecting until
/// [`ControlPlaneClient::close`] (dropping the handle does not stop it).
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    options: Options,
    sink: Arc<dyn ConfigSink>,
) -> ControlPlaneClient {
    let (stop, stopped) = watch::channel(false);
    let finished = Arc::new((Mutex::new(false), Condvar::new()));
    let report = Arc::clone(&finished);
    runtime.spawn(async move {
        run(options, sink, stopped).await;
        *report.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        report.1.notify_all();
    });
    ControlPlaneClient { stop, finished }
}

/// Resolves once a stop is asked for; never when the handle is dropped
/// without asking.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Connects and keeps reconnecting, with exponential backoff and jitter,
/// until `stop` turns true.
pub async fn run(options: Options, sink: Arc<dyn ConfigSink>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
    loop {
        let started = Instant::now();
        let (connected, error) = session(&options, &sink, &mut stop).await;
        if *stop.borrow() {
            return;
        }
        if connected && started.elapsed() >= STABLE_AFTER {
            backoff.reset();
        }
        let wait = backoff.next(rand::random::<f64>());
        logs::event_fields(
            "WARN",
            "cp_disconnected",
            &[
                ("url", Field::Str(&options.url)),
                ("node_id", Field::Str(&options.node_id)),
                ("error", Field::Str(&error)),
                ("was_connected", Field::Bool(connected)),
                ("retry_in_ms", Field::Int(wait.as_millis() as i64)),
            ],
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_requested(&mut stop) => return,
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection from dial to its end: whether hello was sent, and why it
/// ended.
async fn session(
    options: &Options,
    sink: &Arc<dyn ConfigSink>,
    stop: &mut watch::Receiver<bool>,
) -> (bool, String) {
    let dialed = tokio::select! {
        dialed = dial(options) => dialed,
        _ = stop_requested(stop) => return (false, STOPPING.to_owned()),
    };
    let mut socket = match dialed {
        Ok(socket) => socket,
        Err(error) => return (false, error),
    };
    let hello = json!({
        "type": "hello",
        "node_id": options.node_id,
        "router": logs::ROUTER,
        "config_version": sink.current_version(),
    });
    if let Err(error) = send(&mut socket, hello.to_string()).await {
        return (false, format!("send hello: {error}"));
    }
    logs::event(
        "cp_connected",
        &[("url", &options.url), ("node_id", &options.node_id)],
    );
    metrics::set_control_plane_connected(true);
    let error = serve(&mut socket, options, sink, stop).await;
    metrics::set_control_plane_connected(false);
    (true, error)
}

async fn dial(options: &Options) -> Result<Socket, String> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(token) = &options.token {
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("token: {e}"))?;
        request
            .headers_mut()
            .insert(tungstenite::http::header::AUTHORIZATION, value);
    }
    let config = WebSocketConfig::default()
        .max_frame_size(Some(MAX_SNAPSHOT_FRAME_BYTES))
        .max_message_size(Some(MAX_SNAPSHOT_FRAME_BYTES));
    match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await
    {
        Err(_) => Err(format!("no handshake within {HANDSHAKE_TIMEOUT:?}")),
        // The control plane answered but refused the upgrade (401 for a wrong token).
        Ok(Err(tungstenite::Error::Http(response))) => Err(format!(
            "upgrade refused: HTTP {}",
            response.status().as_u16()
        )),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok((socket, _))) => Ok(socket),
    }
}

/// The frames the router reads; unknown fields are ignored so that a newer
/// control plane can add some.
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    version: String,
    /// The full document, exactly as the control plane sent it.
    #[serde(default)]
    config: Option<Box<RawValue>>,
}

/// A snapshot waiting to be applied.
struct Offer {
    version: String,
    doc: Vec<u8>,
}

type Applying = (String, JoinHandle<Result<String, ConfigError>>);

/// Reads frames until the connection ends; returns why it ended.
///
/// Applying runs beside the reading (as in the Go client): a slow apply
/// never stops pings from being answered, and snapshots that arrive during
/// an apply replace each other — only the newest is applied and acked next.
async fn serve(
    socket: &mut Socket,
    options: &Options,
    sink: &Arc<dyn ConfigSink>,
    stop: &mut watch::Receiver<bool>,
) -> String {
    let mut applying: Option<Applying> = None;
    let mut waiting: Option<Offer> = None;
    let mut deadline = Instant::now() + options.silence_timeout;
    let ended = loop {
        tokio::select! {
            // Any frame, pings included, proves the connection alive;
            // tungstenite answers pings itself while we read.
            frame = socket.next() => {
                deadline = Instant::now() + options.silence_timeout;
                match read_offer(frame) {
                    Ok(Some(offer)) => waiting = Some(offer),
                    Ok(None) => {}
                    Err(ended) => break ended,
                }
            }
            result = async { (&mut applying.as_mut().expect("guarded by the condition").1).await },
                if applying.is_some() =>
            {
                let (version, _) = applying.take().expect("guarded by the condition");
                let reply = match result {
                    Ok(Ok(_)) => json!({"type": "ack", "version": version}),
                    Ok(Err(rejection)) => json!({"type": "nack", "version": version, "error": rejection.to_string()}),
                    Err(panicked) => json!({"type": "nack", "version": version, "error": panicked.to_string()}),
                };
                if let Err(error) = send(socket, reply.to_string()).await {
                    break format!("send {}: {error}", reply["type"].as_str().unwrap_or_default());
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                break format!("nothing heard for {:?}", options.silence_timeout);
            }
            _ = stop_requested(stop) => {
                let goodbye = CloseFrame { code: CloseCode::Away, reason: STOPPING.into() };
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(Some(goodbye))).await;
                break STOPPING.to_owned();
            }
        }
        if applying.is_none() {
            if let Some(offer) = waiting.take() {
                let sink = Arc::clone(sink);
                // Parsing up to 16 MiB and building a snapshot is CPU work:
                // keep it off the async workers.
                let task = tokio::task::spawn_blocking(move || {
                    sink.apply(&offer.doc, Source::ControlPlane)
                });
                applying = Some((offer.version, task));
            }
        }
    };
    // Never leave an apply running behind the session (Go waits too).
    if let Some((_, task)) = applying {
        let _ = task.await;
    }
    ended
}

/// The snapshot a frame carries, `None` for frames that carry none, or why
/// the connection ended.
fn read_offer(frame: Option<Result<Message, tungstenite::Error>>) -> Result<Option<Offer>, String> {
    let frame = match frame {
        None => return Err("connection closed".to_owned()),
        Some(Err(error)) => return Err(error.to_string()),
        Some(Ok(frame)) => frame,
    };
    let payload = match &frame {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes.as_ref(),
        Message::Close(Some(close)) => {
            return Err(format!(
                "closed by the control plane: {} {}",
                close.code, close.reason
            ))
        }
        Message::Close(None) => return Err("closed by the control plane".to_owned()),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(None),
    };
    let incoming: Incoming = serde_json::from_slice(payload)
        .map_err(|error| format!("undecodable frame from the control plane: {error}"))?;
    if incoming.kind != "config_snapshot" {
        // Skipped so that a newer control plane can add message types.
        return Ok(None);
    }
    let doc = incoming
        .config
        .map(|raw| raw.get().as_bytes().to_vec())
        .unwrap_or_default();
    Ok(Some(Offer {
        version: incoming.version,
        doc,
    }))
}

async fn send(socket: &mut Socket, text: String) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::text(text))).await {
        Err(_) => Err(format!("write took longer than {WRITE_TIMEOUT:?}")),
        Ok(result) => result.map_err(|e| e.to_string()),
    }
}

/// Reconnect delays that double from `min` to `max`, each spread by ±20 %
/// so that a fleet that lost the control plane at the same moment does not
/// come back in lockstep. Hand-written (as in the Go client): a dozen lines,
/// and no backoff crate is in the build.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

const BACKOFF_SPREAD: f64 = 0.2;

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// The delay before the next attempt, given `jitter` uniform in [0, 1);
    /// doubles the base.
    fn next(&mut self, jitter: f64) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let spread = 1.0 + BACKOFF_SPREAD * (2.0 * jitter - 1.0);
        base.mul_f64(spread).clamp(self.min, self.max)
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn token_from_flag_file_or_environment() {
        let dir = std::env::temp_dir().join(format!("cellbench-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let env = || Some("from-env".to_owned());
        let flag = || Some("f".to_owned());

        assert_eq!(
            resolve_token(flag(), None, env()).unwrap().as_deref(),
            Some("f")
        );
        assert_eq!(
            resolve_token(None, Some(&file), env()).unwrap().as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            resolve_token(None, None, env()).unwrap().as_deref(),
            Some("from-env")
        );
        assert_eq!(
            resolve_token(Some(String::new()), None, Some(String::new())).unwrap(),
            None
        );
        assert!(matches!(
            resolve_token(flag(), Some(&file), None),
            Err(TokenError::FlagAndFile)
        ));
        assert!(matches!(
            resolve_token(None, Some(&empty), env()),
            Err(TokenError::EmptyFile(_))
        ));
        assert!(matches!(
            resolve_token(None, Some(&dir.join("absent")), env()),
            Err(TokenError::UnreadableFile(..))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use serde_json::Value;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    use crate::config::{self, ConfigError};

    /// The connected gauge is process-wide: tests that move it run one at a time.
    static GAUGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A sink that validates with the real parser and remembers the
    /// versions it applied; each apply takes `delay`.
    struct ParsingSink {
        version: Mutex<String>,
        applied: Mutex<Vec<String>>,
        delay: Duration,
    }

    impl ConfigSink for ParsingSink {
        fn apply(&self, doc: &[u8], source: Source) -> Result<String, ConfigError> {
            assert_eq!(source, Source::ControlPlane);
            std::thread::sleep(self.delay);
            let config = config::parse(doc)?;
            *self.version.lock().unwrap() = config.version.clone();
            self.applied.lock().unwrap().push(config.version.clone());
            Ok(config.version)
        }
        fn current_version(&self) -> String {
            self.version.lock().unwrap().clone()
        }
    }

    /// A stop signal whose sender is gone: the client must keep running.
    fn never() -> watch::Receiver<bool> {
        watch::channel(false).1
    }

    fn sink(version: &str) -> Arc<ParsingSink> {
        Arc::new(ParsingSink {
            version: Mutex::new(version.to_owned()),
            applied: Mutex::default(),
            delay: Duration::ZERO,
        })
    }

    fn document(version: &str) -> String {
        format!(
            r#"{{"version":"{version}","default_placement":"a","placements":{{"a":{{"kind":"shared","endpoint":"http://127.0.0.1:9"}}}}}}"#
        )
    }

    type ServerSocket = WebSocketStream<TcpStream>;

    /// A fake control plane: hands each accepted connection (and its
    /// Authorization header) to the test.
    async fn fake_control_plane() -> (
        String,
        mpsc::Receiver<(ServerSocket, Option<String>)>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/connect", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel(4);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let auth = Arc::new(Mutex::new(None));
                let seen = Arc::clone(&auth);
                let callback = move |request: &Request, response: Response| {
                    *seen.lock().unwrap() = request
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    Ok(response)
                };
                if let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                    let header = auth.lock().unwrap().clone();
                    if tx.send((socket, header)).await.is_err() {
                        return;
                    }
                }
            }
        });
        (url, rx, server)
    }

    async fn accept(
        rx: &mut mpsc::Receiver<(ServerSocket, Option<String>)>,
    ) -> (ServerSocket, Option<String>) {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("router did not connect")
            .unwrap()
    }

    async fn read_json(socket: &mut ServerSocket) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("no frame from the router")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    async fn send_snapshot(socket: &mut ServerSocket, version: &str, doc: &str) {
        let frame = format!(r#"{{"type":"config_snapshot","version":"{version}","config":{doc}}}"#);
        socket.send(Message::text(frame)).await.unwrap();
    }

    fn connected_gauge() -> f64 {
        let text = String::from_utf8(metrics::render().0).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("cellbench_control_plane_connected ")?
                    .parse()
                    .ok()
            })
            .unwrap()
    }

    #[tokio::test]
    async fn hello_then_ack_for_a_valid_snapshot_and_nack_for_an_invalid_one() {
        let _gauge = GAUGE.lock().await;
        let (url, mut conns, server) = fake_control_plane().await;
        let sink = sink("v0");
        let client = tokio::spawn(run(
            Options::new(url, Some("s3cret".into()), "edge-1"),
            sink.clone(),
            never(),
        ));

        let (mut socket, auth) = accept(&mut conns).await;
        assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
        assert_eq!(
            read_json(&mut socket).await,
            json!({"type": "hello", "node_id": "edge-1", "router": "pingora", "config_version": "v0"})
        );
        assert_eq!(connected_gauge(), 1.0);

        send_snapshot(&mut socket, "v1", &document("v1")).await;
        assert_eq!(
            read_json(&mut socket).await,
            json!({"type": "ack", "version": "v1"})
        );
        assert_eq!(sink.current_version(), "v1");

        // Frames of unknown types are skipped, not answered.
        socket
            .send(Message::text(r#"{"type":"future_thing","x":1}"#))
            .await
            .unwrap();
        let invalid = document("v2").replace("shared", "sharded");
        send_snapshot(&mut socket, "v2", &invalid).await;
        let nack = read_json(&mut socket).await;
        assert_eq!(nack["type"], "nack");
        assert_eq!(nack["version"], "v2");
        assert!(
            nack["error"]
                .as_str()
                .unwrap()
                .starts_with("kind_invalid: "),
            "{nack}"
        );
        assert_eq!(
            sink.current_version(),
            "v1",
            "a rejected snapshot must not be applied"
        );

        client.abort();
        server.abort();
    }

    #[tokio::test]
    async fn reconnects_after_the_server_drops_and_refuses_an_oversized_frame() {
        let _gauge = GAUGE.lock().await;
        let (url, mut conns, server) = fake_control_plane().await;
        let sink = sink("v0");
        let client = tokio::spawn(run(
            Options::new(url, None, "edge-2"),
            sink.clone(),
            never(),
        ));

        let (mut socket, auth) = accept(&mut conns).await;
        assert_eq!(auth, None);
        assert_eq!(read_json(&mut socket).await["type"], "hello");
        drop(socket); // the control plane goes away

        let (mut socket, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut socket).await["type"], "hello");
        // A frame header announcing 32 MiB: the client must give up on the
        // connection from the header alone (no payload follows).
        let mut header = vec![0x81, 127];
        header.extend_from_slice(&(32u64 << 20).to_be_bytes());
        socket.get_mut().write_all(&header).await.unwrap();
        socket.get_mut().flush().await.unwrap();

        let (mut socket, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut socket).await["config_version"], "v0");
        send_snapshot(&mut socket, "v3", &document("v3")).await;
        assert_eq!(
            read_json(&mut socket).await,
            json!({"type": "ack", "version": "v3"})
        );

        client.abort();
        server.abort();
    }

    #[tokio::test]
    async fn a_slow_apply_keeps_answering_pings_and_only_the_newest_waiting_snapshot_is_applied() {
        let (url, mut conns, server) = fake_control_plane().await;
        let sink = Arc::new(ParsingSink {
            version: Mutex::new("v0".into()),
            applied: Mutex::default(),
            delay: Duration::from_millis(400),
        });
        let client = tokio::spawn(run(
            Options::new(url, None, "edge-4"),
            sink.clone(),
            never(),
        ));
        let (mut socket, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut socket).await["type"], "hello");

        for version in ["v1", "v2", "v3"] {
            send_snapshot(&mut socket, version, &document(version)).await;
        }
        // v1 is being applied now: a ping is still answered.
        socket
            .send(Message::Ping(b"alive?".to_vec().into()))
            .await
            .unwrap();
        let pong = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Pong(data))) => return data,
                    Some(Ok(_)) => continue,
                    other => panic!("connection ended: {other:?}"),
                }
            }
        })
        .await
        .expect("no pong while an apply was running");
        assert_eq!(&pong[..], b"alive?");

        assert_eq!(
            read_json(&mut socket).await,
            json!({"type": "ack", "version": "v1"})
        );
        assert_eq!(
            read_json(&mut socket).await,
            json!({"type": "ack", "version": "v3"})
        );
        assert_eq!(
            *sink.applied.lock().unwrap(),
            ["v1", "v3"],
            "v2 was replaced by v3 while v1 applied"
        );

        client.abort();
        server.abort();
    }

    #[tokio::test]
    async fn silence_ends_the_connection() {
        let _gauge = GAUGE.lock().await;
        let (url, mut conns, server) = fake_control_plane().await;
        let mut options = Options::new(url, None, "edge-3");
        options.silence_timeout = Duration::from_millis(300);
        let client = tokio::spawn(run(options, sink("v0"), never()));

        let (mut first, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut first).await["type"], "hello");
        // Say nothing: the router must hang up and dial again.
        let (mut second, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut second).await["type"], "hello");

        client.abort();
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_says_goodbye_with_1001_and_stops_reconnecting() {
        let _gauge = GAUGE.lock().await;
        let (url, mut conns, server) = fake_control_plane().await;
        let client = spawn(
            &tokio::runtime::Handle::current(),
            Options::new(url, None, "edge-5"),
            sink("v0"),
        );
        let (mut socket, _) = accept(&mut conns).await;
        assert_eq!(read_json(&mut socket).await["type"], "hello");

        let closing = tokio::task::spawn_blocking(move || client.close(Duration::from_secs(5)));
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("no close frame");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(close.code, CloseCode::Away);
                assert_eq!(close.reason.as_str(), STOPPING);
            }
            other => panic!("want a close frame, got {other:?}"),
        }
        drop(socket);
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("close did not return")
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(600), conns.recv())
                .await
                .is_err(),
            "a closed client dialled again"
        );
        server.abort();
    }

    #[test]
    fn backoff_doubles_within_bounds_with_spread() {
        let ms = Duration::from_millis;
        for (jitter, want) in [
            (0.5, [200u128, 400, 800, 1600, 3200, 6400, 10000, 10000]),
            (0.0, [200, 320, 640, 1280, 2560, 5120, 8000, 8000]),
            (1.0, [240, 480, 960, 1920, 3840, 7680, 10000, 10000]),
        ] {
            let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
            let got: Vec<u128> = (0..8).map(|_| backoff.next(jitter).as_millis()).collect();
            assert_eq!(got, want, "jitter {jitter}");
            backoff.reset();
            assert!(backoff.next(jitter) <= ms(240));
        }
    }

    #[test]
    fn node_id_defaults_to_host_and_pid() {
        let options = Options::new("ws://x/connect", None, "");
        assert!(
            options
                .node_id
                .ends_with(&format!("-{}", std::process::id())),
            "{}",
            options.node_id
        );
    }
}
