//! The two JSON-lines logs of contract §4, with the Go router's field order
//! and formats: the access log (`--access-log stdout|off|PATH`, one line per
//! request, `msg: "request"`) and the event log on stderr.
//!
//! Access lines are encoded on the request's thread into a per-thread buffer
//! and appended to a shared pending buffer under a mutex held only for the
//! copy. One writer thread takes the whole pending buffer every 100 ms, or
//! as soon as 64 KiB are waiting, and writes it outside the lock. The request
//! path makes no syscall and allocates nothing per line: the writer is woken
//! once per 64 KiB, not per line (a channel would wake it, with a futex call,
//! for nearly every line). When the writer falls 8 MiB behind, requests wait
//! for it rather than lose lines — the access log is a record, and a
//! benchmark must not look faster by dropping it. `off` costs one load.
//!
//! Events are rare (config, control plane, health, breaker changes) and
//! written straight to stderr, one `write` per line.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `X-Router` / the `router` log field of this router.
pub const ROUTER: &str = "pingora";

/// Longest time a line waits before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Pending bytes that wake the writer early.
const WRITE_AT: usize = 64 << 10;
/// Pending bytes at which requests wait for the writer.
const MAX_PENDING: usize = 8 << 20;

/// The lines waiting for the writer thread.
struct Writer {
    pending: Mutex<Pending>,
    /// The writer waits here for work.
    work: Condvar,
    /// Requests (when the buffer is full) and `flush` wait here for a write.
    written: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Set by `flush`: write now, whatever the size.
    flush_wanted: bool,
    /// Completed writes, so that `flush` knows when its bytes are out.
    writes: u64,
    /// The writer holds a batch taken before the latest lines came in.
    writing: bool,
}

/// The access log: a copyable handle the router holds (no process-global
/// state), `off` when `--access-log off`. The writer thread and its buffer
/// live as long as the process.
#[derive(Clone, Copy, Default)]
pub struct AccessLog {
    writer: Option<&'static Writer>,
}

impl AccessLog {
    /// Opens the access log destination: `stdout`, `off` or a file path
    /// (appended to, created if missing). Call once at start-up.
    pub fn open(destination: &str) -> io::Result<AccessLog> {
        let writer = match destination {
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
        Ok(AccessLog { writer })
    }

    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog::default()
    }

    /// Whether access lines are written at all (lets callers skip building one).
    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Logs one request (nothing when the access log is off).
    pub fn write(&self, record: &AccessRecord<'_>) {
        if let Some(writer) = self.writer {
            append(writer, record);
        }
    }

    /// Writes out every access line logged so far (call before exiting).
    pub fn flush(&self) {
        if let Some(writer) = self.writer {
            flush_log(writer);
        }
    }
}

/// Starts the writer thread; the log lives as long as the process.
fn spawn_writer(out: Box<dyn Write + Send>) -> io::Result<&'static Writer> {
    let log: &'static Writer = Box::leak(Box::new(Writer {
        pending: Mutex::new(Pending::default()),
        work: Condvar::new(),
        written: Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_lines(log, out))?;
    Ok(log)
}

fn lock(log: &Writer) -> MutexGuard<'_, Pending> {
    log.pending.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_lines(log: &Writer, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::with_capacity(WRITE_AT * 2);
    loop {
        let pending = lock(log);
        let (mut pending, _) = log
            .work
            .wait_timeout_while(pending, FLUSH_EVERY, |p| {
                p.lines.len() < WRITE_AT && !p.flush_wanted
            })
            .unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut pending.lines, &mut batch);
        pending.flush_wanted = false;
        pending.writing = true;
        drop(pending);
        if !batch.is_empty() {
            // A failing destination (a closed stdout) must not stop the router.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        let mut pending = lock(log);
        pending.writes += 1;
        pending.writing = false;
        drop(pending);
        log.written.notify_all();
    }
}

fn flush_log(log: &Writer) {
    let mut pending = lock(log);
    // A write in progress took its batch before our lines were added: then
    // wait for the one after it.
    let target = pending.writes + if pending.writing { 2 } else { 1 };
    pending.flush_wanted = true;
    log.work.notify_one();
    let _ = log
        .written
        .wait_timeout_while(pending, Duration::from_secs(2), |p| p.writes < target)
        .unwrap_or_else(|e| e.into_inner());
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

thread_local! {
    /// Each thread encodes its lines here, so a line costs no allocation.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

fn append(log: &Writer, record: &AccessRecord<'_>) {
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        encode_access(&mut line, record, SystemTime::now());
        let mut pending = lock(log);
        if pending.lines.len() >= MAX_PENDING {
            log.work.notify_one();
            pending = log
                .written
                .wait_while(pending, |p| p.lines.len() >= MAX_PENDING)
                .unwrap_or_else(|e| e.into_inner());
        }
        let before = pending.lines.len();
        pending.lines.extend_from_slice(&line);
        let crossed = before < WRITE_AT && pending.lines.len() >= WRITE_AT;
        drop(pending);
        if crossed {
            log.work.notify_one();
        }
    });
}

fn encode_access(line: &mut Vec<u8>, r: &AccessRecord<'_>, now: SystemTime) {
    line.extend_from_slice(b"{\"ts\":\"");
    push_rfc3339(line, now);
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
        push_str_field(line, name, value);
    }
    // Writing into a Vec cannot fail.
    let _ = write!(line, ",\"status\":{},\"attempts\":{}", r.status, r.attempts);
    push_str_field(line, "error", r.error);
    line.extend_from_slice(b",\"duration_ms\":");
    push_millis(line, r.duration_ms);
    line.extend_from_slice(b",\"upstream_ms\":");
    push_millis(line, r.upstream_ms);
    let _ = write!(line, ",\"bytes_out\":{}", r.bytes_out);
    push_str_field(line, "config_version", r.config_version);
    push_str_field(line, "router", ROUTER);
    line.extend_from_slice(b"}\n");
}

/// Milliseconds with three decimals, as Go writes them; formatted from
/// integer microseconds, which is several times cheaper than `{:.3}`.
fn push_millis(line: &mut Vec<u8>, ms: f64) {
    let micros = (ms.max(0.0) * 1e3).round() as u64;
    let _ = write!(line, "{}.{:03}", micros / 1000, micros % 1000);
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
        let mut line = Vec::new();
        encode_access(&mut line, &record, UNIX_EPOCH);
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
    fn writer_thread_writes_every_line_and_flush_waits_for_them() {
        let path =
            std::env::temp_dir().join(format!("cellbench-access-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = AccessLog::open(path.to_str().unwrap()).unwrap();
        assert!(log.enabled());
        let record = AccessRecord {
            request_id: "x",
            status: 204,
            ..Default::default()
        };
        // Enough lines to cross the early-write threshold more than once.
        let lines = 1_000;
        for _ in 0..lines {
            log.write(&record);
        }
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), lines);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], 204);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
