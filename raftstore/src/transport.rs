//! The raft transport between stores.
//!
//! Messages a shard's raft loop produces are buffered per destination store and, once per
//! loop turn, sent as one `RaftMessageBatch` to the destination store's shard of the same
//! index (or shard 0 when it has fewer); that shard routes each message to the shard owning
//! the region. A message carrying a snapshot is too big for a batch: it is encoded and sent
//! as `SnapshotChunk`s of at most `snapshot-chunk-size` bytes, reassembled by the receiver.
//! Sending never blocks the raft loop: each batch is sent by its own task; a failed send is
//! dropped (raft retransmits) and the connection re-established next time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use net::proto::metapb;
use net::proto::raft_serverpb::{RaftMessage, RaftMessageBatch, SnapshotChunk};
use net::{ClientPool, ConnConfig, Method};
use pd::PdClient;
use prost::Message;
use raft::eraftpb::MessageType;

use crate::shared::StoreShared;

/// Counters of the transport.
#[derive(Debug, Default, Clone, Copy)]
pub struct TransportStats {
    /// Messages handed to `send`.
    pub messages: u64,
    /// Batches sent.
    pub batches: u64,
    /// Messages dropped by a filter or a failed send.
    pub dropped: u64,
    /// Snapshots sent in chunks.
    pub snapshots: u64,
}

/// A shard's sending side.
pub struct Transport {
    shard_id: usize,
    store_id: Cell<u64>,
    pending: RefCell<HashMap<u64, Vec<RaftMessage>>>,
    stores: RefCell<HashMap<u64, metapb::Store>>,
    pool: ClientPool,
    pd: PdClient,
    shared: Arc<StoreShared>,
    chunk_size: usize,
    stats: Cell<TransportStats>,
    nonce: Cell<u64>,
    on_snapshot_sent: RefCell<Option<SnapshotReporter>>,
}

/// Called after a snapshot was sent (or failed): `(region, to peer, delivered)`.
pub type SnapshotReporter = Rc<dyn Fn(u64, u64, bool)>;

impl Transport {
    /// A transport for shard `shard_id`.
    pub fn new(shard_id: usize, pd: PdClient, shared: Arc<StoreShared>, chunk_size: usize) -> Self {
        let conn = ConnConfig { call_timeout: std::time::Duration::from_secs(10), ..ConnConfig::default() };
        Transport {
            shard_id,
            store_id: Cell::new(0),
            pending: RefCell::new(HashMap::new()),
            stores: RefCell::new(HashMap::new()),
            pool: ClientPool::new(conn),
            pd,
            shared,
            chunk_size,
            stats: Cell::new(TransportStats::default()),
            nonce: Cell::new(rand::random::<u32>() as u64),
            on_snapshot_sent: RefCell::new(None),
        }
    }

    /// Sets who hears about finished snapshot transfers (the raft loop: raft must be told,
    /// or the follower's progress stays paused in snapshot state).
    pub fn set_snapshot_reporter(&self, r: SnapshotReporter) {
        *self.on_snapshot_sent.borrow_mut() = Some(r);
    }

    fn report_snapshot(&self, region_id: u64, to: u64, ok: bool) {
        let r = self.on_snapshot_sent.borrow().clone();
        if let Some(r) = r {
            r(region_id, to, ok);
        }
    }

    /// Sets this store's id.
    pub fn set_store_id(&self, id: u64) {
        self.store_id.set(id);
    }

    /// Counters so far.
    pub fn stats(&self) -> TransportStats {
        self.stats.get()
    }

    fn bump(&self, f: impl FnOnce(&mut TransportStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Queues a message for `to_store`; it leaves at the next [`Transport::flush`].
    pub fn send(&self, to_store: u64, msg: RaftMessage) {
        self.bump(|s| s.messages += 1);
        if !self.shared.allow(self.store_id.get(), to_store, &msg) {
            self.bump(|s| s.dropped += 1);
            // A dropped snapshot must be reported, or raft waits for it forever.
            if let Some(m) = msg.message.as_ref().filter(|m| m.msg_type == MessageType::MsgSnapshot as i32) {
                self.report_snapshot(msg.region_id, m.to, false);
            }
            return;
        }
        self.pending.borrow_mut().entry(to_store).or_default().push(msg);
    }

    /// Forgets a store's cached address (after a failure).
    pub fn forget_store(&self, store_id: u64) {
        self.stores.borrow_mut().remove(&store_id);
    }

    /// Sends every queued message: one batch per store, snapshots in chunks.
    pub fn flush(self: &Rc<Self>) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (store, msgs) in pending {
            let (snaps, normal): (Vec<RaftMessage>, Vec<RaftMessage>) = msgs
                .into_iter()
                .partition(|m| m.message.as_ref().is_some_and(|r| r.msg_type == MessageType::MsgSnapshot as i32));
            if !normal.is_empty() {
                self.bump(|s| s.batches += 1);
                let me = self.clone();
                glommio::spawn_local(async move { me.send_batch(store, normal).await }).detach();
            }
            for m in snaps {
                self.bump(|s| s.snapshots += 1);
                let me = self.clone();
                glommio::spawn_local(async move { me.send_snapshot(store, m).await }).detach();
            }
        }
    }

    async fn address(&self, store: u64) -> Option<String> {
        let known = self.stores.borrow().get(&store).cloned();
        let s = match known {
            Some(s) => s,
            None => {
                let (s, _) = self.pd.get_store(store).await.ok()?;
                self.stores.borrow_mut().insert(store, s.clone());
                s
            }
        };
        let addr = s.shard_addresses.get(self.shard_id).or_else(|| s.shard_addresses.first()).cloned();
        Some(addr.filter(|a| !a.is_empty()).unwrap_or(s.address))
    }

    async fn send_batch(&self, store: u64, msgs: Vec<RaftMessage>) {
        let n = msgs.len() as u64;
        let batch = RaftMessageBatch { from_store: self.store_id.get(), msgs };
        if let Err(e) = self.call(store, Method::RaftBatch, batch.encode_to_vec().into()).await {
            tracing::debug!(to_store = store, "raft batch not delivered: {e}");
            self.bump(|s| s.dropped += n);
        }
    }

    async fn send_snapshot(&self, store: u64, msg: RaftMessage) {
        let region_id = msg.region_id;
        let to = msg.to_peer.as_ref().map_or(0, |p| p.id);
        let meta = msg.message.as_ref().and_then(|m| m.snapshot.as_ref()).and_then(|s| s.metadata.clone());
        let (snap_index, snap_term) = meta.map_or((0, 0), |m| (m.index, m.term));
        let nonce = self.nonce.get();
        self.nonce.set(nonce + 1);
        let bytes = Bytes::from(msg.encode_to_vec());
        let chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(self.chunk_size)
            .map(|i| bytes.slice(i..(i + self.chunk_size).min(bytes.len())))
            .collect();
        let last = chunks.len().saturating_sub(1);
        for (seq, data) in chunks.into_iter().enumerate() {
            let chunk = SnapshotChunk {
                from_store: self.store_id.get(),
                region_id,
                snap_index,
                snap_term,
                nonce,
                seq: seq as u64,
                data,
                last: seq == last,
            };
            if let Err(e) = self.call(store, Method::SnapshotChunk, chunk.encode_to_vec().into()).await {
                tracing::warn!(region_id, to_store = store, "snapshot send failed: {e}");
                self.bump(|s| s.dropped += 1);
                self.report_snapshot(region_id, to, false);
                return;
            }
        }
        tracing::debug!(region_id, to_store = store, snap_index, bytes = bytes.len(), "snapshot sent");
        self.report_snapshot(region_id, to, true);
    }

    async fn call(&self, store: u64, method: Method, payload: Bytes) -> Result<Bytes, String> {
        let Some(addr) = self.address(store).await else {
            return Err(format!("address of store {store} unknown"));
        };
        let client = match self.pool.get(&addr).await {
            Ok(c) => c,
            Err(e) => {
                self.forget_store(store);
                return Err(e.to_string());
            }
        };
        match client.call(method, payload, None).await {
            Ok(b) => Ok(b),
            Err(e) => {
                if e.is_retryable() {
                    self.pool.evict(&addr);
                    self.forget_store(store);
                }
                Err(e.to_string())
            }
        }
    }
}

/// A transfer: (sending store, region, sender nonce).
type TransferKey = (u64, u64, u64);

/// Reassembles chunked snapshots on the receiving shard.
#[derive(Default)]
pub struct SnapshotAssembler {
    /// Per transfer: the next chunk expected and the bytes so far.
    parts: RefCell<HashMap<TransferKey, (u64, Vec<u8>)>>,
}

impl SnapshotAssembler {
    /// Adds a chunk; returns the whole message once the last chunk arrived in order.
    pub fn add(&self, c: SnapshotChunk) -> Result<Option<RaftMessage>, String> {
        let key = (c.from_store, c.region_id, c.nonce);
        let mut parts = self.parts.borrow_mut();
        let entry = parts.entry(key).or_insert((0, Vec::new()));
        if c.seq != entry.0 {
            parts.remove(&key);
            return Err(format!("snapshot chunk {} out of order", c.seq));
        }
        entry.0 += 1;
        entry.1.extend_from_slice(&c.data);
        if !c.last {
            return Ok(None);
        }
        let (_, data) = parts.remove(&key).unwrap_or_default();
        RaftMessage::decode(&*data).map(Some).map_err(|e| format!("snapshot message does not decode: {e}"))
    }
}
