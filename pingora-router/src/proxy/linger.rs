//! Closing a client connection after an error answer without destroying it.
//!
//! When the router answers before it has read the whole request body (a 413,
//! or an upstream failure mid-upload), closing the socket with unread bytes in
//! its receive queue makes the kernel send a reset, and a reset can reach the
//! client before it has read the answer: the client sees "broken pipe" or
//! "connection reset" instead of the 413. nginx's `lingering_close` and
//! net/http's `closeWriteAndWait` avoid this the same way: half-close first,
//! then read and discard what the client is still sending, bounded in bytes
//! and time so a client cannot hold the connection open by sending forever.

use std::time::Duration;

use pingora::proxy::Session;

/// How long the rest of a request body is read after an error answer.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// How much of the rest of a request body is read after an error answer
/// (net/http discards up to 256 KiB of an unread body the same way).
const LINGER_MAX_BYTES: usize = 256 << 10;

/// Sends a FIN after the answer, then discards what is left of the request
/// body until its end, [`LINGER_MAX_BYTES`] or [`LINGER_TIMEOUT`], whichever
/// comes first. The caller drops the connection afterwards.
pub async fn linger_close(session: &mut Session) {
    let downstream = session.as_downstream_mut();
    downstream.shutdown().await;
    let discard = async {
        let mut discarded = 0;
        while discarded < LINGER_MAX_BYTES {
            match downstream.read_request_body().await {
                Ok(Some(chunk)) => discarded += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, discard).await;
}
