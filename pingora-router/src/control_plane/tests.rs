use super::backoff::Backoff;
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
            // tungstenite's handshake callback returns its own ErrorResponse.
            #[allow(clippy::result_large_err)]
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
