//! Black-box tests of the router binary over real sockets: a tiny in-test
//! upstream, the router started as a child process, raw HTTP/1.1 from the
//! client side. They check the proxy path and headers (contract §2, §3), the
//! retry rules, router-made errors, the wire rules and SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A free local port (bound, then released for the router to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An upstream that answers every request with its request head as the body.
/// `/flaky` answers 503 to the first request and 200 afterwards; `/always503`
/// always answers 503.
struct Upstream {
    port: u16,
    requests: Arc<AtomicUsize>,
}

fn start_upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let counter = Arc::clone(&counter);
            thread::spawn(move || serve_upstream(stream, counter));
        }
    });
    Upstream { port, requests }
}

fn serve_upstream(mut stream: TcpStream, counter: Arc<AtomicUsize>) {
    loop {
        let Some(head) = read_head(&mut stream) else {
            return;
        };
        if !skip_body(&mut stream, &head) {
            return;
        }
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        if path == "/slow" {
            thread::sleep(Duration::from_millis(800));
        }
        let status = match path.as_str() {
            "/flaky" if n == 0 => "503 Service Unavailable",
            "/always503" => "503 Service Unavailable",
            "/always500" => "500 Internal Server Error",
            _ => "200 OK",
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Secret: hop\r\nConnection: X-Secret\r\nX-Cell: test\r\n\r\n{head}",
            head.len()
        );
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads and drops the request body (Content-Length or chunked without
/// extensions or trailers, enough for these tests).
fn skip_body(stream: &mut TcpStream, head: &str) -> bool {
    let lower = head.to_ascii_lowercase();
    let mut byte = [0u8; 1];
    if lower.contains("\r\ntransfer-encoding: chunked") {
        let mut tail = Vec::new();
        while !tail.ends_with(b"\r\n0\r\n\r\n") && tail != b"0\r\n\r\n" {
            match stream.read(&mut byte) {
                Ok(1) => tail.push(byte[0]),
                _ => return false,
            }
        }
        return true;
    }
    let length = lower
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).is_ok()
}

/// Reads one request head.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

struct Router {
    child: Child,
    port: u16,
    _dir: TempDir,
    /// Holds the "dead" placement's port: bound, never listening, so a
    /// connect is refused and no other test can take the port meanwhile.
    _dead: tokio::net::TcpSocket,
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(upstream_port: u16, dead_port: u16) -> String {
    format!(
        r#"{{
  "version": "b-test.1",
  "default_placement": "tier3",
  "routes": {{ "acme": "tier1", "dead": "dead", "visa": "visa",
              "limited": "limited", "small": "small", "fragile": "fragile" }},
  "placements": {{
    "tier1": {{ "kind": "shared", "endpoint": "http://127.0.0.1:{upstream_port}",
               "retry": {{ "max_attempts": 2 }} }},
    "tier3": {{ "kind": "shared", "endpoint": "http://127.0.0.1:{upstream_port}" }},
    "visa":  {{ "kind": "dedicated", "endpoint": "http://127.0.0.1:{upstream_port}" }},
    "dead":  {{ "kind": "shared", "endpoint": "http://127.0.0.1:{dead_port}",
               "retry": {{ "max_attempts": 3 }}, "timeouts": {{ "connect_ms": 200 }} }},
    "limited": {{ "kind": "shared", "endpoint": "http://127.0.0.1:{upstream_port}",
                 "rate_limit": {{ "requests_per_second": 0.5, "burst": 1, "per": "routing_key" }} }},
    "small": {{ "kind": "shared", "endpoint": "http://127.0.0.1:{upstream_port}", "max_request_body_bytes": 10 }},
    "fragile": {{ "kind": "dedicated", "endpoint": "http://127.0.0.1:{upstream_port}", "fallback": "visa",
                 "circuit_breaker": {{ "failure_threshold": 1, "open_ms": 60000 }} }}
  }}
}}"#
    )
}

fn start_router(upstream_port: u16) -> Router {
    let dir = std::env::temp_dir().join(format!("b-proxy-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let dead = tokio::net::TcpSocket::new_v4().unwrap();
    dead.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    std::fs::write(
        &path,
        config(upstream_port, dead.local_addr().unwrap().port()),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_pingora-router"))
        .args(["--config", path.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--access-log",
            "off",
            "--workers",
            "1",
            "--drain-timeout-ms",
            "2000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("router binary starts");
    let router = Router {
        child,
        port,
        _dir: TempDir(dir),
        _dead: dead,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "router did not listen within 10 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
    router
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes and reads the response until the router closes.
fn send_raw(port: u16, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(port: u16, path: &str, extra: &str) -> Response {
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: cell.example\r\nConnection: close\r\n{extra}\r\n");
    send_raw(port, req.as_bytes())
}

#[test]
fn proxies_with_contract_headers_both_ways() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(
        router.port,
        "/hello?x=1",
        "X-Routing-Key: visa\r\nX-Request-Id: client-id-1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Drop: 1\r\nConnection: X-Drop\r\nProxy-Authorization: secret\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("X-Router"), Some("pingora"));
    assert_eq!(resp.header("X-Routed-To"), Some("visa"));
    assert_eq!(resp.header("X-Route-Reason"), Some("dedicated"));
    assert_eq!(resp.header("X-Config-Version"), Some("b-test.1"));
    assert_eq!(resp.header("X-Upstream-Attempts"), Some("1"));
    assert_eq!(resp.header("X-Circuit-State"), Some("closed"));
    assert_eq!(resp.header("X-Request-Id"), Some("client-id-1"));
    assert_eq!(resp.header("X-Failover-Reason"), None);
    assert!(resp
        .header("Server-Timing")
        .is_some_and(|v| v.starts_with("upstream;dur=")));
    assert_eq!(resp.header("X-Cell"), Some("test"));
    assert_eq!(
        resp.header("X-Secret"),
        None,
        "response field named in Connection is dropped"
    );

    // What the upstream received.
    let seen = resp.body.to_ascii_lowercase();
    assert!(seen.starts_with("get /hello?x=1 http/1.1\r\n"), "{seen}");
    assert!(
        seen.contains("\r\nhost: cell.example\r\n"),
        "client Host preserved: {seen}"
    );
    assert!(seen.contains("\r\nx-request-id: client-id-1\r\n"), "{seen}");
    assert!(
        seen.contains("\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\n"),
        "{seen}"
    );
    assert!(seen.contains("\r\nx-forwarded-proto: http\r\n"), "{seen}");
    assert!(
        seen.contains("\r\nx-forwarded-host: cell.example\r\n"),
        "{seen}"
    );
    assert!(seen.contains("\r\nvia: 1.1 cellbench\r\n"), "{seen}");
    assert!(
        !seen.contains("x-drop"),
        "Connection-nominated field forwarded: {seen}"
    );
    assert!(!seen.contains("proxy-authorization"), "{seen}");
    assert!(seen.contains("\r\nx-routing-key: visa\r\n"), "{seen}");
}

#[test]
fn routes_unknown_keys_to_default_and_generates_request_ids() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(router.port, "/", "X-Routing-Key: nobody\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Routed-To"), Some("tier3"));
    assert_eq!(resp.header("X-Route-Reason"), Some("default"));
    let id = resp.header("X-Request-Id").expect("generated id");
    assert!(!id.is_empty() && id.len() <= 128);
    assert!(resp
        .body
        .to_ascii_lowercase()
        .contains(&format!("x-request-id: {id}")));
}

#[test]
fn missing_routing_key_is_a_json_400_without_contacting_upstream() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(router.port, "/", "");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON body");
    assert_eq!(body["error"], "missing_routing_key");
    assert_eq!(body["request_id"].as_str(), resp.header("X-Request-Id"));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn retries_a_503_for_idempotent_requests() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(router.port, "/flaky", "X-Routing-Key: acme\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Upstream-Attempts"), Some("2"));
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 2);

    // Out of attempts: the last 503 is passed through as it is.
    let resp = get(router.port, "/always503", "X-Routing-Key: acme\r\n");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("X-Upstream-Attempts"), Some("2"));
    assert_eq!(resp.header("X-Cell"), Some("test"));
}

#[test]
fn does_not_retry_a_503_for_a_request_with_a_body() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let req = b"PUT /always503 HTTP/1.1\r\nHost: h\r\nX-Routing-Key: acme\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    // Content-Length 0 is no body: retried.
    assert_eq!(
        send_raw(router.port, req).header("X-Upstream-Attempts"),
        Some("2")
    );
    let req = b"POST /always503 HTTP/1.1\r\nHost: h\r\nX-Routing-Key: acme\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(
        send_raw(router.port, req).header("X-Upstream-Attempts"),
        Some("1"),
        "POST is not idempotent"
    );
}

#[test]
fn connect_failure_is_retried_then_a_json_502() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(router.port, "/", "X-Routing-Key: dead\r\n");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.header("X-Upstream-Attempts"), Some("3"));
    assert_eq!(resp.header("X-Routed-To"), Some("dead"));
    let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON body");
    assert_eq!(body["error"], "upstream_connect_error");
}

#[test]
fn wire_rules_oversized_head_and_bad_framing() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let big = "a".repeat(70 * 1024);
    let resp = get(
        router.port,
        "/",
        &format!("X-Routing-Key: acme\r\nX-Big: {big}\r\n"),
    );
    assert_eq!(resp.status, 431);

    let req = b"POST / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: acme\r\nContent-Length: 12abc\r\n\r\n";
    assert_eq!(send_raw(router.port, req).status, 400);

    // Content-Length with Transfer-Encoding: read as chunked, connection
    // closed after the response, the trailing bytes never run as a request.
    let smuggle = b"POST / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: acme\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\nX-Routing-Key: acme\r\n\r\n";
    let resp = send_raw(router.port, smuggle);
    assert!(
        resp.status == 400 || resp.status == 200,
        "status {}",
        resp.status
    );
    assert!(!resp.body.contains("/smuggled"));
    thread::sleep(Duration::from_millis(200));
    let expected = if resp.status == 200 { 1 } else { 0 };
    assert_eq!(
        upstream.requests.load(Ordering::SeqCst),
        expected,
        "smuggled request reached the upstream"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_zero() {
    let upstream = start_upstream();
    let mut router = start_router(upstream.port);
    let port = router.port;
    let in_flight = thread::spawn(move || get(port, "/slow", "X-Routing-Key: acme\r\n"));
    thread::sleep(Duration::from_millis(200));
    let pid = router.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a new connection after SIGTERM must be refused"
    );
    assert_eq!(
        in_flight.join().unwrap().status,
        200,
        "the in-flight request finishes"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = router.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "router still running 5 s after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rate_limited_requests_get_a_json_429_with_retry_after() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    // 0.5 rps with burst 1: a window of 2 s admitting one request.
    assert_eq!(
        get(router.port, "/", "X-Routing-Key: limited\r\n").status,
        200
    );
    let resp = get(router.port, "/", "X-Routing-Key: limited\r\n");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("Retry-After"), Some("2"));
    assert_eq!(resp.header("X-Route-Reason"), Some("shared"));
    assert_eq!(resp.header("X-Upstream-Attempts"), None);
    let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON body");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn body_limit_by_content_length_and_while_streaming() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let req = b"POST / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: small\r\nContent-Length: 11\r\n\r\nhello world";
    let resp = send_raw(router.port, req);
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("X-Routed-To"), Some("small"));
    assert_eq!(
        upstream.requests.load(Ordering::SeqCst),
        0,
        "refused before any upstream contact"
    );

    let chunked = b"POST / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: small\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n";
    let resp = send_raw(router.port, chunked);
    assert_eq!(resp.status, 413, "{}", resp.body);
    let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON body");
    assert_eq!(body["error"], "body_too_large");

    let fits = b"POST / HTTP/1.1\r\nHost: h\r\nX-Routing-Key: small\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    assert_eq!(send_raw(router.port, fits).status, 200);
}

#[test]
fn an_open_breaker_fails_over_with_the_reason() {
    let upstream = start_upstream();
    let router = start_router(upstream.port);
    let resp = get(router.port, "/always500", "X-Routing-Key: fragile\r\n");
    assert_eq!(resp.status, 500, "a 500 is passed through");
    assert_eq!(
        resp.header("X-Circuit-State"),
        Some("closed"),
        "the state that admitted the request"
    );
    let resp = get(router.port, "/", "X-Routing-Key: fragile\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Routed-To"), Some("visa"));
    assert_eq!(resp.header("X-Failover-Reason"), Some("circuit_open"));
    assert_eq!(resp.header("X-Route-Reason"), Some("dedicated"));
    assert_eq!(
        resp.header("X-Circuit-State"),
        Some("closed"),
        "state of the serving placement"
    );
}
