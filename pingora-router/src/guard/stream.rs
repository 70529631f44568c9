//! The client stream wrapper that enforces the head and idle deadlines.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{Entry, Registry};

/// An accepted client stream under the registry's watch.
pub struct GuardedStream {
    pub(super) inner: Stream,
    pub(super) entry: Arc<Entry>,
    pub(super) registry: Arc<Registry>,
    pub(super) timer: Pin<Box<Sleep>>,
    /// The deadline `timer` is set to.
    pub(super) armed: Option<Instant>,
}

impl fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("id", &self.entry.id)
            .finish()
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        self.registry.release(&self.entry);
    }
}

impl GuardedStream {
    /// The deadline of the head being waited for, if the connection waits.
    fn deadline(&self) -> Option<Instant> {
        let e = &self.entry;
        if e.busy.load(Ordering::Acquire) {
            return None;
        }
        let limits = self.registry.limits;
        let started = e.head_started.load(Ordering::Relaxed);
        Some(if started != u64::MAX {
            e.accepted + Duration::from_nanos(started) + limits.head_timeout
        } else if e.first.load(Ordering::Relaxed) {
            e.accepted + limits.head_timeout
        } else {
            e.accepted
                + Duration::from_nanos(e.waiting_since.load(Ordering::Relaxed))
                + limits.idle_timeout
        })
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.entry.waker.register(cx.waker());
        if this.entry.shed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shed at the client connection limit",
            )));
        }
        if let Some(deadline) = this.deadline() {
            if this.armed != Some(deadline) {
                this.timer.as_mut().reset(deadline.into());
                this.armed = Some(deadline);
            }
            if this.timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client head or idle timeout",
                )));
            }
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let e = &this.entry;
            if !e.busy.load(Ordering::Acquire) && e.head_started.load(Ordering::Relaxed) == u64::MAX
            {
                e.head_started
                    .store(e.since(Instant::now()), Ordering::Relaxed);
            }
        }
        res
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
