//! Where config documents come from (contract §5, §7) and the interface they
//! are handed to. Sources only read documents; the [`ConfigSink`] (the
//! snapshot store) validates, swaps and records them.
//!
//! The file source polls instead of using inotify: polling sees an in-place
//! rewrite and an atomic rename over the file alike (an inotify watch on the
//! file is lost with the rename), needs no extra dependency, and four
//! `stat` calls a second cost nothing.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::ConfigError;
use crate::logs;

/// Where the live snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    ControlPlane,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::ControlPlane => "control_plane",
        }
    }
}

/// Receives documents from the sources; implemented by the snapshot store.
pub trait ConfigSink: Send + Sync + 'static {
    /// Validates with `config::parse` and, if valid, atomically swaps the
    /// live snapshot; returns the applied version. Rejections are recorded
    /// (last_rejected, counter, `config_rejected` event) by the sink itself.
    fn apply(&self, doc: &[u8], source: Source) -> Result<String, ConfigError>;
    fn current_version(&self) -> String;
}

/// How often the file is checked (one `stat`), and how long a change must
/// hold still before it is read: a change is applied within
/// POLL_INTERVAL + SETTLE, well inside the contract's 1 s, even while the
/// file keeps changing every few hundred milliseconds (Go's router
/// debounces its file events by the same 50 ms).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
pub const SETTLE: Duration = Duration::from_millis(50);

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &std::path::Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        inode: meta.ino(),
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

fn content_hash(doc: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    doc.hash(&mut hasher);
    hasher.finish()
}

/// The config file as a source (used when no control plane is set): every
/// change of the file is applied, and SIGHUP applies it at once.
pub struct FileSource {
    path: PathBuf,
    /// The content last applied or rejected (at first, the bootstrap's).
    last_hash: u64,
}

impl FileSource {
    /// `bootstrap` is the document the router started with.
    pub fn new(path: PathBuf, bootstrap: &[u8]) -> Self {
        FileSource {
            path,
            last_hash: content_hash(bootstrap),
        }
    }

    /// Starts watching on `runtime`. The SIGHUP handler is installed before
    /// this returns, so a hangup right after start-up is not lost (nor
    /// fatal, SIGHUP's default action).
    pub fn spawn(
        self,
        runtime: &tokio::runtime::Handle,
        sink: Arc<dyn ConfigSink>,
    ) -> std::io::Result<()> {
        let hangups = {
            let _entered = runtime.enter();
            signal(SignalKind::hangup())?
        };
        runtime.spawn(self.watch(hangups, sink));
        Ok(())
    }

    /// The polling loop. A changed stamp is read only once it has stayed the
    /// same for SETTLE, so that a writer rewriting the file in place is not
    /// caught half-way (which would log a spurious `config_rejected`).
    /// Identical content is not re-applied (a `touch` is not a reload).
    async fn watch(self, mut hangups: Signal, sink: Arc<dyn ConfigSink>) {
        let FileSource {
            path,
            mut last_hash,
        } = self;
        // Unknown at first: the file is read once it is seen stable, and
        // compared with the bootstrap, so a change made between the bootstrap
        // read and this task's start is not missed.
        let mut seen: Option<Stamp> = None;
        let mut pending = false;
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = ticker.tick() => false,
                _ = hangups.recv() => true,
            };
            let current = match stamp(&path) {
                Ok(current) => current,
                Err(err) => {
                    if forced {
                        report_read_failure(&path, &err);
                    }
                    seen = None;
                    continue;
                }
            };
            if !forced {
                if seen != Some(current) {
                    tokio::time::sleep(SETTLE).await;
                    let again = stamp(&path).ok();
                    seen = again;
                    pending = true;
                    if again != Some(current) {
                        continue;
                    }
                } else if !pending {
                    continue;
                }
            }
            // An unreadable file (say, permissions) stays pending: it is tried
            // again every poll until it can be read.
            let doc = match tokio::fs::read(&path).await {
                Ok(doc) => doc,
                Err(err) => {
                    if forced {
                        report_read_failure(&path, &err);
                    }
                    continue;
                }
            };
            pending = false;
            let hash = content_hash(&doc);
            if hash == last_hash && !forced {
                continue;
            }
            // A rejected document is remembered too: the same bytes are not
            // rejected again until the file changes (or SIGHUP asks).
            last_hash = hash;
            let sink = Arc::clone(&sink);
            // Parsing a large document is CPU work: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || sink.apply(&doc, Source::File)).await;
        }
    }
}

/// A file that cannot be read keeps the last good config. Polls stay quiet
/// about it (it is usually the moment between an unlink and a new file, as
/// some editors save); a SIGHUP that cannot read the file says so, as Go's
/// router does.
fn report_read_failure(path: &std::path::Path, err: &std::io::Error) {
    logs::warn(
        "config_read_failed",
        &[
            ("path", &path.display().to_string()),
            ("error", &err.to_string()),
        ],
    );
}

/// With a control plane the file is only the bootstrap, but SIGHUP must not
/// kill the router (its default action): it is logged and otherwise ignored.
pub fn spawn_hangup_ignorer(runtime: &tokio::runtime::Handle) -> std::io::Result<()> {
    let mut hangups = {
        let _entered = runtime.enter();
        signal(SignalKind::hangup())?
    };
    runtime.spawn(async move {
        while hangups.recv().await.is_some() {
            logs::event(
                "sighup_ignored",
                &[("reason", "config comes from the control plane")],
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what the watcher applies; accepts documents starting with `{`.
    #[derive(Default)]
    struct Recorder {
        docs: Mutex<Vec<String>>,
    }

    impl ConfigSink for Recorder {
        fn apply(&self, doc: &[u8], _source: Source) -> Result<String, ConfigError> {
            self.docs
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(doc).into_owned());
            if doc.starts_with(b"{") {
                Ok("v".into())
            } else {
                Err(ConfigError::new(
                    crate::config::code::PARSE_ERROR,
                    "not an object",
                ))
            }
        }
        fn current_version(&self) -> String {
            "v".into()
        }
    }

    async fn wait_for(recorder: &Recorder, count: usize) -> Vec<String> {
        for _ in 0..40 {
            let docs = recorder.docs.lock().unwrap().clone();
            if docs.len() >= count {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        recorder.docs.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn applies_rewrites_renames_and_sighup_and_skips_identical_content() {
        let dir = std::env::temp_dir().join(format!("cellbench-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, "{1}").unwrap();
        let recorder = Arc::new(Recorder::default());
        let hangups = signal(SignalKind::hangup()).unwrap();
        let watcher =
            tokio::spawn(FileSource::new(path.clone(), b"{1}").watch(hangups, recorder.clone()));

        std::fs::write(&path, "{2}").unwrap(); // in place
        assert_eq!(wait_for(&recorder, 1).await, ["{2}"]);

        let staged = dir.join("config.json.tmp");
        std::fs::write(&staged, "{3}").unwrap();
        std::fs::rename(&staged, &path).unwrap(); // atomic rename over it
        assert_eq!(wait_for(&recorder, 2).await, ["{2}", "{3}"]);

        // Same bytes, new inode and mtime: not a change.
        std::fs::write(&staged, "{3}").unwrap();
        std::fs::rename(&staged, &path).unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            recorder.docs.lock().unwrap().len(),
            2,
            "identical content was applied again"
        );
        std::fs::write(&path, "bad").unwrap();
        assert_eq!(wait_for(&recorder, 3).await, ["{2}", "{3}", "bad"]);

        // SIGHUP applies the file now, even unchanged.
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(wait_for(&recorder, 4).await, ["{2}", "{3}", "bad", "bad"]);

        watcher.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file that keeps changing every 200 ms (a deploy loop, the harness's
    /// reload scenario) must still have its versions applied as they come,
    /// not only once the writes stop.
    #[tokio::test]
    async fn applies_versions_while_the_file_keeps_changing() {
        let dir = std::env::temp_dir().join(format!("cellbench-churn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, "{0}").unwrap();
        let recorder = Arc::new(Recorder::default());
        let hangups = signal(SignalKind::hangup()).unwrap();
        let watcher =
            tokio::spawn(FileSource::new(path.clone(), b"{0}").watch(hangups, recorder.clone()));
        let versions = 8;
        for v in 1..=versions {
            std::fs::write(&path, format!("{{{v}}}")).unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Applied while the writes were still going on: all but the last.
        let mut during: Vec<String> = recorder.docs.lock().unwrap().clone();
        during.dedup();
        during.retain(|doc| doc != &format!("{{{versions}}}"));
        assert!(
            during.len() >= (versions - 1) / 2,
            "only {during:?} of {} versions applied while the file kept changing",
            versions - 1
        );
        watcher.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
