//! Where connections are registered: Pingora's accept loop and its `ServerApp`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

use super::GuardedStream;
use super::Registry;

/// Admission in Pingora's accept loop (its `ConnectionFilter` hook, which
/// runs before the accepted stream gets a task): the cap is applied, and
/// waiting connections shed at the shed pace, as each connection is
/// accepted, and the loop
/// waits for shed descriptors to close before it accepts more. The entry is
/// handed to [`GuardedApp`] by peer address.
#[derive(Debug)]
pub struct AdmitFilter {
    registry: Arc<Registry>,
}

impl AdmitFilter {
    pub fn new(registry: Arc<Registry>) -> Self {
        AdmitFilter { registry }
    }
}

#[async_trait]
impl ConnectionFilter for AdmitFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        let Some(addr) = addr else {
            return true; // admitted by GuardedApp instead
        };
        let Some(entry) = self.registry.admit_paced().await else {
            return false;
        };
        self.registry
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*addr, entry);
        self.registry.wait_for_closing().await;
        true
    }
}

/// The proxy's `ServerApp` with every connection registered and guarded.
pub struct GuardedApp<A> {
    inner: Arc<A>,
    registry: Arc<Registry>,
}

impl<A> GuardedApp<A> {
    pub fn new(inner: A, registry: Arc<Registry>) -> Self {
        GuardedApp {
            inner: Arc::new(inner),
            registry,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().copied()));
        let admitted = peer.and_then(|p| {
            self.registry
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p)
        });
        // Admitted at the accept (AdmitFilter), else now. Over the cap with
        // nothing to shed: dropping the stream closes it.
        let entry = match admitted {
            Some(entry) => entry,
            None => self.registry.admit_paced().await?,
        };
        if entry.shed.load(Ordering::Acquire) {
            // Shed while it waited for this task.
            self.registry.release(&entry);
            return None;
        }
        let guarded = GuardedStream {
            inner: stream,
            entry,
            registry: Arc::clone(&self.registry),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        };
        // The HTTP app keeps a connection for all its requests and returns
        // None; nothing comes back to re-wrap.
        self.inner.process_new(Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
