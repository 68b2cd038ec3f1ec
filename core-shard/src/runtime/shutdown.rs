//! Cooperative shutdown of the shards.
//!
//! The pool keeps a [`ShutdownHandle`]; each shard gets a [`ShutdownSignal`]. Firing the
//! handle (from any thread) completes every signal's [`ShutdownSignal::wait`]; a shard then
//! finishes in-flight work, syncs and closes its files and returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The firing side, held by the pool (cloneable, `Send`).
#[derive(Clone)]
pub struct ShutdownHandle {
    fired: Arc<AtomicBool>,
    // Dropping the sender wakes every receiver; kept in an Arc<Mutex> so that clones share it.
    tx: Arc<std::sync::Mutex<Option<flume::Sender<()>>>>,
}

/// The waiting side, one per shard.
#[derive(Clone)]
pub struct ShutdownSignal {
    fired: Arc<AtomicBool>,
    rx: flume::Receiver<()>,
}

/// A connected handle and signal.
pub fn shutdown_pair() -> (ShutdownHandle, ShutdownSignal) {
    let (tx, rx) = flume::bounded(1);
    let fired = Arc::new(AtomicBool::new(false));
    (
        ShutdownHandle { fired: fired.clone(), tx: Arc::new(std::sync::Mutex::new(Some(tx))) },
        ShutdownSignal { fired, rx },
    )
}

impl ShutdownHandle {
    /// Fires the signal. Idempotent.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        // A poisoned lock only means another thread panicked while firing: fire anyway.
        let mut guard = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.take();
    }

    /// Whether the signal was fired.
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl ShutdownSignal {
    /// Whether shutdown has been requested.
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Completes once shutdown is requested.
    pub async fn wait(&self) {
        // The channel never carries a value: `recv` returns an error when the sender drops.
        while !self.is_fired() {
            if self.rx.recv_async().await.is_err() {
                break;
            }
        }
    }
}
