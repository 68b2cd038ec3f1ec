//! Snapshots: generated from the shard's RocksDB range, applied atomically.
//!
//! *Generate* (sender): when raft asks for a snapshot, a consistent RocksDB snapshot is taken
//! together with the applied index, and the region's pairs are read on the blocking pool into
//! `SnapshotData`; the transport streams the message in chunks.
//! *Apply* (receiver): one durable RocksDB batch deletes the region's range, writes every pair,
//! the region state and the apply state (applied = truncated = snapshot index); only then is
//! the raft log reset to start after the snapshot. Until both are durable the peer handles no
//! further ready.

use std::rc::Rc;

use bytes::Bytes;
use net::proto::raft_serverpb::{
    KeyValue, PeerState, RaftApplyState, RaftTruncatedState, RegionLocalState, SnapshotData,
};
use prost::Message;
use raft::eraftpb::{self, Snapshot, SnapshotMetadata};
use rocksdb::WriteBatch;

use super::{Lifecycle, Peer};
use crate::ctx::ShardCtx;
use crate::engine::put_msg;
use crate::keys;
use crate::msg::Event;
use crate::storage::{conf_state_of, encode_entry, reset_log, SnapState};

impl Peer {
    /// Starts generating a snapshot if raft asked for one.
    pub fn maybe_generate_snapshot(&mut self, ctx: &Rc<ShardCtx>) {
        if !matches!(*self.raw_node.store().snap_state(), SnapState::Requested) {
            return;
        }
        let store = self.raw_node.store();
        let region = store.region().clone();
        let applied = store.applied_index();
        let term = match raft::Storage::term(store, applied) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(region_id = region.id, "cannot snapshot at {applied}: {e}");
                return;
            }
        };
        let Ok(snap) = ctx.engine.snapshot() else { return };
        store.set_snap_state(SnapState::Generating(region.region_epoch.clone().unwrap_or_default()));
        let ctx2 = ctx.clone();
        glommio::spawn_local_into(
            async move {
                let region_id = region.id;
                let r2 = region.clone();
                let read = glommio::executor().spawn_blocking(move || {
                    let mut pairs = Vec::new();
                    snap.scan_region(&r2.start_key, &r2.end_key, |cf, k, v| {
                        pairs.push(KeyValue { key: Bytes::copy_from_slice(k), value: Bytes::copy_from_slice(v), cf });
                        true
                    })
                    .map(|()| pairs)
                });
                let result = match read.await {
                    Ok(pairs) => {
                        let n = pairs.len();
                        let data = SnapshotData { region: Some(region.clone()), pairs };
                        let mut s = Snapshot { data: data.encode_to_vec(), ..Default::default() };
                        s.metadata =
                            Some(SnapshotMetadata { conf_state: Some(conf_state_of(&region)), index: applied, term });
                        tracing::info!(
                            region_id,
                            index = applied,
                            keys = n,
                            bytes = s.data.len(),
                            "snapshot generated"
                        );
                        ctx2.shared.snapshots_generated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Ok(Box::new(s))
                    }
                    Err(e) => Err(e.to_string()),
                };
                ctx2.push(Event::SnapshotGenerated { region_id, snap: result });
            },
            ctx.queues.background,
        )
        .map(|t| t.detach())
        .ok();
    }

    /// A generated snapshot is ready: raft may send it now.
    pub fn on_snapshot_generated(&mut self, snap: Result<Box<Snapshot>, String>) {
        let store = self.raw_node.store();
        let epoch = match &*store.snap_state() {
            SnapState::Generating(epoch) => epoch.clone(),
            _ => return, // a snapshot was applied meanwhile; raft asks again if it needs one
        };
        match snap {
            Ok(s) => store.set_snap_state(SnapState::Ready(s, epoch)),
            Err(e) => {
                tracing::warn!(region_id = self.region_id(), "snapshot generation failed: {e}");
                store.set_snap_state(SnapState::Idle);
            }
        }
    }

    /// Applies a received snapshot (from a ready) in the background.
    pub(super) fn start_apply_snapshot(
        &mut self,
        ctx: &Rc<ShardCtx>,
        snap: Snapshot,
        entries: Vec<eraftpb::Entry>,
        number: u64,
        msgs: Vec<eraftpb::Message>,
    ) {
        let region_id = self.region_id();
        let meta = snap.metadata.clone().unwrap_or_default();
        let data = match SnapshotData::decode(snap.data.as_slice()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(region_id, "snapshot data does not decode: {e}");
                return;
            }
        };
        let region = data.region.clone().unwrap_or_default();
        let old = self.region().clone();
        let mut wb = WriteBatch::default();
        if !old.peers.is_empty() {
            ctx.engine.delete_region_data(&mut wb, &old.start_key, &old.end_key);
        }
        ctx.engine.clear_region(&mut wb, &region);
        for kv in &data.pairs {
            if let Err(e) = ctx.engine.put_region_pair(&mut wb, kv.cf, &kv.key, &kv.value) {
                tracing::error!(region_id, "snapshot data refused: {e}");
                return;
            }
        }
        let apply = RaftApplyState {
            applied_index: meta.index,
            truncated_state: Some(RaftTruncatedState { index: meta.index, term: meta.term }),
        };
        let state = RegionLocalState {
            state: PeerState::Normal as i32,
            region: Some(region.clone()),
            handover_seq: self.handover_seq,
        };
        put_msg(&mut wb, &keys::region_state_key(region_id), &state);
        put_msg(&mut wb, &keys::apply_state_key(region_id), &apply);
        let store = self.raw_node.mut_store();
        store.set_region(region);
        *store.apply_state_mut() = apply;
        store.set_snap_state(SnapState::Idle);
        self.lifecycle = Lifecycle::ApplyingSnapshot;
        let hs = self.raw_node.raft.hard_state();
        let log_entries: Vec<_> = entries.into_iter().map(encode_entry).collect();
        let peer_id = self.meta.id;
        let ctx2 = ctx.clone();
        tracing::info!(region_id, index = meta.index, keys = data.pairs.len(), "applying snapshot");
        glommio::spawn_local(async move {
            core_shard::crash_point!("snapshot::apply::before");
            // Data first: the log may only forget entries once RocksDB durably has the state.
            if let Err(e) = ctx2.engine.write_durable(wb).await {
                tracing::error!(region_id, "snapshot write failed: {e}");
                return;
            }
            core_shard::crash_point!("snapshot::apply::after_data");
            match reset_log(&ctx2.log, region_id, meta.index, log_entries, &hs) {
                Ok(durable) => match durable.await {
                    Ok(()) => {
                        ctx2.shared.snapshots_applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        ctx2.push(Event::SnapshotApplied { region_id, peer_id, number, msgs })
                    }
                    Err(e) => tracing::error!(region_id, "raft log reset failed: {e}"),
                },
                Err(e) => tracing::error!(region_id, "raft log reset refused: {e}"),
            }
        })
        .detach();
    }

    /// The snapshot's data and the log reset are durable.
    pub fn on_snapshot_applied(&mut self, ctx: &Rc<ShardCtx>, number: u64, msgs: Vec<eraftpb::Message>) {
        if self.lifecycle == Lifecycle::ApplyingSnapshot {
            self.lifecycle = Lifecycle::Active;
        }
        self.heartbeat_due = true;
        self.raw_node.on_persist_ready(number);
        // raft-rs learns that the snapshot is applied only through `advance_apply`: until
        // then it believes the old applied index, below the new truncated one, and an
        // election timeout (which scans the unapplied entries for conf changes) would ask the
        // storage for entries the snapshot replaced — a fatal `Compacted` inside raft-rs.
        let applied = self.raw_node.store().applied_index();
        if applied > self.raw_node.raft.raft_log.applied {
            self.raw_node.advance_apply_to(applied);
        }
        self.send(ctx, msgs);
    }
}
