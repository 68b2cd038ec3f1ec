//! Cross-shard mailboxes: the only way shards talk.
//!
//! Every shard owns one inbound channel ([`Inbox`]) carrying *batches* of messages. A shard
//! sends through its [`Outbox`]: messages to each destination are buffered during the
//! current loop turn and go out as one batch when a flusher task — queued behind the tasks
//! that are runnable now — runs. One channel operation (and at most one cross-core wake-up)
//! therefore carries everything a turn produced for a shard.
//!
//! Both ends are bounded, so a slow receiver pushes back on its senders:
//! * an inbound channel holds at most [`MailboxConfig::capacity`] batches; the flusher waits
//!   for room before it sends more;
//! * an outbox holds at most [`MailboxConfig::max_batch`] unsent messages per destination;
//!   [`Outbox::send`] waits (and [`Outbox::try_send`] fails with [`TrySendError::Full`]) while
//!   the buffer for that destination is full.
//!
//! The channels are flume channels: their wakers work across glommio executors (glommio routes
//! a foreign wake-up to the owning executor) and they also accept [`InboxSender`] handles held
//! by threads that are not shards (a test driver, the process `main`).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use crate::notify::Notify;

/// Bounds of the mailboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Batches an inbound channel holds before senders wait. Default 64.
    pub capacity: usize,
    /// Messages an outbox buffers per destination before `send` waits; also the largest batch.
    /// Default 1024.
    pub max_batch: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig { capacity: 64, max_batch: 1024 }
    }
}

/// Errors of mailbox operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The destination shard does not exist.
    #[error("no shard {0}")]
    NoSuchShard(usize),
    /// The destination's inbox is gone (the shard stopped).
    #[error("shard {0} has stopped receiving")]
    Closed(usize),
}

/// Why [`Outbox::try_send`] did not take a message; the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<M> {
    /// The buffer for that destination is full; retry after the next flush.
    Full(M),
    /// See [`MailboxError`].
    Failed(M, MailboxError),
}

/// Creates the inboxes of `shards` shards and the senders that reach them.
pub fn mailboxes<M: Send>(shards: usize, config: MailboxConfig) -> (Vec<InboxSender<M>>, Vec<Inbox<M>>) {
    (0..shards)
        .map(|id| {
            let (tx, rx) = flume::bounded(config.capacity.max(1));
            (InboxSender { shard: id, tx }, Inbox { rx })
        })
        .unzip()
}

/// A handle that sends whole batches into one shard's inbox, from any thread.
#[derive(Debug)]
pub struct InboxSender<M> {
    shard: usize,
    tx: flume::Sender<Vec<M>>,
}

impl<M> Clone for InboxSender<M> {
    fn clone(&self) -> Self {
        InboxSender { shard: self.shard, tx: self.tx.clone() }
    }
}

impl<M> InboxSender<M> {
    /// Sends a batch, waiting while the inbox is full.
    pub async fn send_batch(&self, batch: Vec<M>) -> Result<(), MailboxError> {
        self.tx.send_async(batch).await.map_err(|_| MailboxError::Closed(self.shard))
    }

    /// Sends a batch from a thread that is not an executor, blocking while the inbox is full.
    pub fn send_batch_blocking(&self, batch: Vec<M>) -> Result<(), MailboxError> {
        self.tx.send(batch).map_err(|_| MailboxError::Closed(self.shard))
    }

    /// The destination shard.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// The receiving end of one shard's mailbox.
pub struct Inbox<M> {
    rx: flume::Receiver<Vec<M>>,
}

impl<M> Inbox<M> {
    /// Waits for at least one batch, then appends every batch available now to `out`.
    /// Returns `false` once every sender is gone and nothing is left.
    pub async fn recv_into(&self, out: &mut Vec<M>) -> bool {
        match self.rx.recv_async().await {
            Ok(batch) => {
                extend(out, batch);
                while let Ok(batch) = self.rx.try_recv() {
                    extend(out, batch);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Appends every batch available now to `out` without waiting; returns how many messages.
    pub fn try_recv_into(&self, out: &mut Vec<M>) -> usize {
        let before = out.len();
        while let Ok(batch) = self.rx.try_recv() {
            extend(out, batch);
        }
        out.len() - before
    }
}

fn extend<M>(out: &mut Vec<M>, batch: Vec<M>) {
    if out.is_empty() {
        *out = batch;
    } else {
        out.extend(batch);
    }
}

struct OutboxInner<M> {
    senders: Vec<InboxSender<M>>,
    pending: RefCell<Vec<Vec<M>>>,
    max_batch: usize,
    /// Set while a flush is scheduled or running.
    flushing: Cell<bool>,
    wake_flusher: Notify,
    /// Woken after each flush round: room in `pending`.
    room: Notify,
    stats: Cell<OutboxStats>,
}

/// Counters of an outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Messages handed to `send`/`try_send`.
    pub messages: u64,
    /// Batches sent to inboxes.
    pub batches: u64,
    /// Times a sender had to wait for room (backpressure).
    pub waits: u64,
}

/// A shard's sending side: buffers per destination, flushed once per loop turn.
///
/// Single-threaded (`Rc`); create one per shard with [`Outbox::new`] inside that shard's
/// executor. Its flusher task stops when the last `Outbox` clone is dropped.
pub struct Outbox<M: 'static> {
    inner: Rc<OutboxInner<M>>,
}

impl<M> Clone for Outbox<M> {
    fn clone(&self) -> Self {
        Outbox { inner: self.inner.clone() }
    }
}

impl<M: Send + 'static> Outbox<M> {
    /// Creates an outbox over `senders` (index = destination shard) and starts its flusher on
    /// the given task queue of the current executor.
    pub fn new(
        senders: Vec<InboxSender<M>>,
        config: MailboxConfig,
        queue: glommio::TaskQueueHandle,
    ) -> Result<Self, glommio::GlommioError<()>> {
        let n = senders.len();
        let inner = Rc::new(OutboxInner {
            senders,
            pending: RefCell::new((0..n).map(|_| Vec::new()).collect()),
            max_batch: config.max_batch.max(1),
            flushing: Cell::new(false),
            wake_flusher: Notify::new(),
            room: Notify::new(),
            stats: Cell::new(OutboxStats::default()),
        });
        let weak = Rc::downgrade(&inner);
        let notified = inner.wake_flusher.notified();
        glommio::spawn_local_into(flusher(weak, notified), queue)?.detach();
        Ok(Outbox { inner })
    }

    /// The number of destinations.
    pub fn shards(&self) -> usize {
        self.inner.senders.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> OutboxStats {
        self.inner.stats.get()
    }

    /// Waits until every message queued so far has been handed to its destination's inbox.
    /// Call it before a shard returns: a detached flusher does not outlive its executor.
    pub async fn flush(&self) {
        loop {
            let room = self.inner.room.notified();
            if !self.inner.flushing.get() {
                return;
            }
            room.await;
        }
    }

    /// Queues `msg` for shard `to`, waiting while that destination's buffer is full.
    pub async fn send(&self, to: usize, mut msg: M) -> Result<(), MailboxError> {
        let mut waited = false;
        loop {
            match self.try_send(to, msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Failed(_, e)) => return Err(e),
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    if !waited {
                        waited = true;
                        self.bump(|s| s.waits += 1);
                    }
                    self.inner.room.notified().await;
                }
            }
        }
    }

    /// Queues `msg` for shard `to` if there is room in this turn's buffer.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), TrySendError<M>> {
        let inner = &self.inner;
        let Some(sender) = inner.senders.get(to) else {
            return Err(TrySendError::Failed(msg, MailboxError::NoSuchShard(to)));
        };
        if sender.tx.is_disconnected() {
            return Err(TrySendError::Failed(msg, MailboxError::Closed(to)));
        }
        {
            let mut pending = inner.pending.borrow_mut();
            if pending[to].len() >= inner.max_batch {
                return Err(TrySendError::Full(msg));
            }
            pending[to].push(msg);
        }
        self.bump(|s| s.messages += 1);
        if !inner.flushing.replace(true) {
            inner.wake_flusher.notify_all();
        }
        Ok(())
    }

    fn bump(&self, f: impl FnOnce(&mut OutboxStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        self.inner.stats.set(s);
    }
}

/// The flusher: after being woken it runs behind the tasks already runnable, so it sees
/// everything this loop turn queued, and sends one batch per destination.
async fn flusher<M: Send + 'static>(weak: Weak<OutboxInner<M>>, mut notified: crate::notify::Notified) {
    loop {
        notified.await;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let batches: Vec<(usize, Vec<M>)> = {
                let mut pending = inner.pending.borrow_mut();
                pending
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(i, p)| (i, std::mem::take(p)))
                    .collect()
            };
            if batches.is_empty() {
                inner.flushing.set(false);
                inner.room.notify_all();
                notified = inner.wake_flusher.notified();
                break;
            }
            // Room is back in `pending` as soon as it is taken; tell waiting senders.
            inner.room.notify_all();
            for (to, batch) in batches {
                let sender = inner.senders[to].clone();
                let mut s = inner.stats.get();
                s.batches += 1;
                inner.stats.set(s);
                // A closed inbox loses the batch: the destination shard is gone, and its
                // senders see `Closed` on their next send.
                let _ = sender.tx.send_async(batch).await;
            }
        }
    }
}
