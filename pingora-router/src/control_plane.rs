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

mod backoff;
#[cfg(test)]
mod tests;
mod token;

use backoff::Backoff;
pub use token::{resolve_token, TokenError, TOKEN_ENV};

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
