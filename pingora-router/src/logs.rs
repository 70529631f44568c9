//! The two JSON-lines logs of contract §4, with the Go router's field order
//! and formats: the access log (`--access-log stdout|off|PATH`, one line per
//! request, `msg: "request"`) and the event log on stderr.
//!
//! Access lines are encoded on the request's thread into a `Vec` and handed
//! over a bounded channel to one writer thread, which buffers them and
//! flushes at least every 100 ms: the request path makes no syscall and
//! takes no lock shared with I/O. When the writer falls behind by a whole
//! channel, requests wait for it rather than lose lines — the access log is
//! a record, and a benchmark must not look faster by dropping it. `off`
//! costs one atomic load.
//!
//! Events are rare (config, control plane, health, breaker changes) and
//! written straight to stderr, one `write` per line.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `X-Router` / the `router` log field of this router.
pub const ROUTER: &str = "pingora";

/// Lines the writer may fall behind by before requests wait.
const ACCESS_CHANNEL_LINES: usize = 16 * 1024;
/// Longest time a line waits in the writer's buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// `None` = `--access-log off`.
static ACCESS: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();

/// Sets the access log destination: `stdout`, `off` or a file path
/// (appended to, created if missing). Call once at start-up, before the
/// first request; without it the log goes to stdout (the contract default).
pub fn init(destination: &str) -> io::Result<()> {
    let sender = match destination {
        "off" => None,
        "stdout" => Some(spawn_writer(Box::new(io::stdout()))?),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(path))?;
            Some(spawn_writer(Box::new(file))?)
        }
    };
    ACCESS.set(sender).map_err(|_| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the access log is already set up",
        )
    })
}

fn access_sender() -> Option<&'static SyncSender<Message>> {
    ACCESS
        .get_or_init(|| spawn_writer(Box::new(io::stdout())).ok())
        .as_ref()
}

fn spawn_writer(out: Box<dyn Write + Send>) -> io::Result<SyncSender<Message>> {
    let (sender, receiver) = sync_channel(ACCESS_CHANNEL_LINES);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_lines(receiver, io::BufWriter::with_capacity(64 << 10, out)))?;
    Ok(sender)
}

fn write_lines(receiver: Receiver<Message>, mut out: io::BufWriter<Box<dyn Write + Send>>) {
    let mut last_flush = Instant::now();
    loop {
        match receiver.recv_timeout(FLUSH_EVERY) {
            Ok(Message::Line(line)) => {
                let _ = out.write_all(&line);
                if last_flush.elapsed() >= FLUSH_EVERY {
                    let _ = out.flush();
                    last_flush = Instant::now();
                }
            }
            Ok(Message::Flush(done)) => {
                let _ = out.flush();
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
                last_flush = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Whether access lines are written at all (lets callers skip building one).
pub fn access_enabled() -> bool {
    access_sender().is_some()
}

/// Writes out every access line logged so far (call before exiting).
pub fn flush() {
    if let Some(sender) = access_sender() {
        let (done, wait) = sync_channel(1);
        if sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// One finished request. Empty strings stand for "not known / not
/// applicable", as in the Go router.
#[derive(Debug, Clone, Default)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub routing_key: &'a str,
    /// The placement the metrics count the request under ("" before routing).
    pub placement: &'a str,
    pub route_reason: &'a str,
    pub failover_reason: &'a str,
    /// The serving placement's endpoint ("" when no attempt was made).
    pub upstream: &'a str,
    pub status: u16,
    pub attempts: u32,
    /// The router's error code for errors it made itself, else "".
    pub error: &'a str,
    pub duration_ms: f64,
    /// Time from sending the last attempt to its response head.
    pub upstream_ms: f64,
    pub bytes_out: u64,
    pub config_version: &'a str,
}

/// Logs one request (nothing when the access log is off).
pub fn access(record: &AccessRecord<'_>) {
    if let Some(sender) = access_sender() {
        // A closed channel means the writer thread is gone; nothing to do then.
        let _ = sender.send(Message::Line(encode_access(record, SystemTime::now())));
    }
}

fn encode_access(r: &AccessRecord<'_>, now: SystemTime) -> Vec<u8> {
    let mut line = Vec::with_capacity(512);
    line.extend_from_slice(b"{\"ts\":\"");
    push_rfc3339(&mut line, now);
    line.extend_from_slice(b"\",\"level\":\"INFO\",\"msg\":\"request\"");
    for (name, value) in [
        ("request_id", r.request_id),
        ("method", r.method),
        ("path", r.path),
        ("routing_key", r.routing_key),
        ("placement", r.placement),
        ("route_reason", r.route_reason),
        ("failover_reason", r.failover_reason),
        ("upstream", r.upstream),
    ] {
        push_str_field(&mut line, name, value);
    }
    // Writing into a Vec cannot fail.
    let _ = write!(line, ",\"status\":{},\"attempts\":{}", r.status, r.attempts);
    push_str_field(&mut line, "error", r.error);
    let _ = write!(
        line,
        ",\"duration_ms\":{:.3},\"upstream_ms\":{:.3},\"bytes_out\":{}",
        r.duration_ms, r.upstream_ms, r.bytes_out
    );
    push_str_field(&mut line, "config_version", r.config_version);
    push_str_field(&mut line, "router", ROUTER);
    line.extend_from_slice(b"}\n");
    line
}

fn push_str_field(line: &mut Vec<u8>, name: &str, value: &str) {
    line.push(b',');
    push_json_str(line, name);
    line.push(b':');
    push_json_str(line, value);
}

fn push_json_str(line: &mut Vec<u8>, value: &str) {
    // Serialising a str into a Vec cannot fail.
    let _ = serde_json::to_writer(line, value);
}

/// A typed event field value.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(s: &'a str) -> Self {
        Field::Str(s)
    }
}

/// Logs an event at level INFO (`msg` is one of the contract's event names).
pub fn event(msg: &str, fields: &[(&str, &str)]) {
    write_event("INFO", msg, fields.iter().map(|(k, v)| (*k, Field::Str(v))));
}

/// Logs an event at level WARN.
pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    write_event("WARN", msg, fields.iter().map(|(k, v)| (*k, Field::Str(v))));
}

/// Logs an event with typed fields.
pub fn event_fields(level: &str, msg: &str, fields: &[(&str, Field<'_>)]) {
    write_event(level, msg, fields.iter().copied());
}

fn write_event<'a>(level: &str, msg: &str, fields: impl Iterator<Item = (&'a str, Field<'a>)>) {
    let line = encode_event(SystemTime::now(), level, msg, fields);
    let _ = io::stderr().lock().write_all(&line);
}

fn encode_event<'a>(
    now: SystemTime,
    level: &str,
    msg: &str,
    fields: impl Iterator<Item = (&'a str, Field<'a>)>,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"ts\":\"");
    push_rfc3339(&mut line, now);
    line.push(b'"');
    push_str_field(&mut line, "level", level);
    push_str_field(&mut line, "msg", msg);
    for (name, value) in fields {
        match value {
            Field::Str(s) => push_str_field(&mut line, name, s),
            Field::Int(n) => {
                line.push(b',');
                push_json_str(&mut line, name);
                let _ = write!(line, ":{n}");
            }
            Field::Bool(b) => {
                line.push(b',');
                push_json_str(&mut line, name);
                line.extend_from_slice(if b { b":true" } else { b":false" });
            }
        }
    }
    line.extend_from_slice(b"}\n");
    line
}

/// Now in RFC 3339, UTC, millisecond precision (`2026-11-26T02:24:14.123Z`).
pub fn rfc3339_now() -> String {
    let mut text = Vec::with_capacity(24);
    push_rfc3339(&mut text, SystemTime::now());
    String::from_utf8(text).expect("ASCII")
}

thread_local! {
    /// The date and time of day of the last second formatted on this
    /// thread: one access line per request must not redo the calendar.
    static LAST_SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn push_rfc3339(out: &mut Vec<u8>, at: SystemTime) {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    LAST_SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, date_time(secs));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
    let _ = write!(out, ".{:03}Z", since_epoch.subsec_millis());
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time. Hand-written (the civil-from-days
/// algorithm) because the only date crate in the build, chrono, is compiled
/// without its clock feature, and turning it on would rebuild Pingora for one
/// timestamp format.
fn date_time(secs: u64) -> String {
    let (days, second_of_day) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days, proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn rfc3339(at: SystemTime) -> String {
        let mut out = Vec::new();
        push_rfc3339(&mut out, at);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, millis: u64| {
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
        };
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z"); // leap day
        assert_eq!(rfc3339(at(1_795_660_454, 123)), "2026-11-26T02:34:14.123Z");
        assert_eq!(rfc3339(at(4_102_444_799, 999)), "2099-12-31T23:59:59.999Z");
        // The per-second cache must not leak into the next second.
        assert_eq!(rfc3339(at(4_102_444_800, 1)), "2100-01-01T00:00:00.001Z");
    }

    #[test]
    fn access_line_has_every_contract_field_in_go_order() {
        let record = AccessRecord {
            request_id: "r-1",
            method: "GET",
            path: "/a \"quoted\"\n",
            routing_key: "acme",
            placement: "tier1",
            route_reason: "shared",
            failover_reason: "",
            upstream: "http://127.0.0.1:9001",
            status: 200,
            attempts: 2,
            error: "",
            duration_ms: 1234.567,
            upstream_ms: 1.5,
            bytes_out: 42,
            config_version: "v1",
        };
        let line = encode_access(&record, UNIX_EPOCH);
        assert_eq!(line.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&line).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line per request");
        let v: Value = serde_json::from_str(text).unwrap();
        let expected_order = [
            "ts",
            "level",
            "msg",
            "request_id",
            "method",
            "path",
            "routing_key",
            "placement",
            "route_reason",
            "failover_reason",
            "upstream",
            "status",
            "attempts",
            "error",
            "duration_ms",
            "upstream_ms",
            "bytes_out",
            "config_version",
            "router",
        ];
        let mut at = 0;
        for key in expected_order {
            let found = text[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order"));
            at += found;
        }
        assert_eq!(v["msg"], "request");
        assert_eq!(v["path"], "/a \"quoted\"\n");
        assert_eq!(v["status"], 200);
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["duration_ms"].as_f64(), Some(1234.567));
        assert_eq!(v["upstream_ms"].as_f64(), Some(1.5));
        assert_eq!(v["bytes_out"], 42);
        assert_eq!(v["router"], "pingora");
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn event_line_is_json_with_typed_fields() {
        let line = encode_event(
            UNIX_EPOCH,
            "WARN",
            "cp_disconnected",
            [
                ("error", Field::Str("closed")),
                ("retry_in_ms", Field::Int(400)),
                ("was_connected", Field::Bool(true)),
            ]
            .into_iter(),
        );
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["msg"], "cp_disconnected");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["retry_in_ms"], 400);
        assert_eq!(v["was_connected"], true);
        assert_eq!(v["error"], "closed");
    }

    #[test]
    fn file_destination_receives_lines_after_flush() {
        let path =
            std::env::temp_dir().join(format!("cellbench-access-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let sender = spawn_writer(Box::new(file)).unwrap();
        let record = AccessRecord {
            request_id: "x",
            status: 204,
            ..Default::default()
        };
        for _ in 0..3 {
            sender
                .send(Message::Line(encode_access(&record, SystemTime::now())))
                .unwrap();
        }
        let (done, wait) = sync_channel(1);
        sender.send(Message::Flush(done)).unwrap();
        wait.recv_timeout(Duration::from_secs(5)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], 204);
        }
        drop(sender);
        std::fs::remove_file(&path).unwrap();
    }
}
