//! The response-header timeout as a deadline for the whole upstream
//! response head (contract §2 rule 7, `response_header_ms`), apart from the
//! body's idle timeout (`response_body_idle_ms`).
//!
//! Why: Pingora has one upstream `read_timeout` and applies it to every read
//! of a response, head and body alike, so a body sent in chunks further
//! apart than the header timeout was cut (seen: 1000 of 4000 bytes under a
//! 200). No hook reaches the upstream session to change it between head and
//! body. So the per-read timeout becomes the body's idle timeout, and the
//! head gets its own deadline here: a timer that, if the head has not come
//! when it fires, shuts the upstream socket down. Pingora's pending read
//! then fails and the proxy reports the attempt as a header timeout.
//!
//! The socket is reached through a duplicate of its descriptor taken in
//! `connected_to_upstream`: holding it means the timer can never hit a
//! descriptor number that was closed and reused meanwhile.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::SockRef;

struct Shared {
    fd: Mutex<Option<OwnedFd>>,
    fired: AtomicBool,
}

/// The head deadline of one attempt. Dropping it disarms the timer.
pub struct HeadWatch {
    shared: Arc<Shared>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl HeadWatch {
    /// Duplicates `fd` (the attempt's upstream socket); the deadline is not
    /// running until [`HeadWatch::start`].
    pub fn new(fd: RawFd) -> Option<Self> {
        // SAFETY: `fd` is the live upstream socket Pingora hands to
        // `connected_to_upstream`; it is only duplicated here.
        let dup = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .ok()?;
        Some(HeadWatch {
            shared: Arc::new(Shared {
                fd: Mutex::new(Some(dup)),
                fired: AtomicBool::new(false),
            }),
            timer: None,
        })
    }

    /// Starts the deadline: the request has been sent.
    pub fn start(&mut self, timeout: Duration) {
        if self.timer.is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        self.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let fd = shared.fd.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(fd) = fd {
                shared.fired.store(true, Ordering::Release);
                let _ = SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
            }
        }));
    }

    /// The head arrived (or the attempt ended): the deadline no longer
    /// applies. Returns whether it had fired first.
    pub fn disarm(&mut self) -> bool {
        self.shared
            .fd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        self.fired()
    }

    /// Whether the deadline fired and cut the socket.
    pub fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::Acquire)
    }
}

impl Drop for HeadWatch {
    fn drop(&mut self) {
        self.disarm();
    }
}
