//! The raft loop's handlers of messages, requests and background results.

use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::Request;
use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb::{self, MessageType, Snapshot};
use raft::GetEntriesContext;

use super::Shard;
use crate::cmd::ApplyEffect;
use crate::cmd::{AdminCmd, CmdError, CmdResult, ReadRequest, ReadResult, RegionDebug};
use crate::peer::Work;
use crate::region_error;
use crate::tracker::{Stage, Ticket};

/// Message types that may create a peer for a region this store does not have.
fn creates_peer(t: i32) -> bool {
    [
        MessageType::MsgAppend,
        MessageType::MsgHeartbeat,
        MessageType::MsgSnapshot,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestPreVote,
        MessageType::MsgTimeoutNow,
    ]
    .iter()
    .any(|m| *m as i32 == t)
}

impl Shard {
    pub(super) fn on_raft_message(&mut self, m: RaftMessage) {
        let region_id = m.region_id;
        if m.is_tombstone {
            return self.on_tombstone(&m);
        }
        let (Some(to), Some(msg)) = (m.to_peer.clone(), m.message.clone()) else { return };
        if self.destroying.contains(&region_id) {
            return; // raft resends once the old peer is gone
        }
        if let Some(peer) = self.peers.get(&region_id).filter(|p| p.is_initialized()) {
            let region = peer.region().clone();
            if self.reply_tombstone(&region, &m) {
                return;
            }
        }
        if let Some(peer) = self.peers.get(&region_id) {
            if to.id < peer.peer_id() {
                return; // for a peer this store replaced
            }
            if to.id > peer.peer_id() {
                // The region re-added this store under a new peer id: our peer was removed.
                self.destroy_peer(region_id, true);
                if self.destroying.contains(&region_id) {
                    return;
                }
            }
        }
        if !self.peers.contains_key(&region_id) && (!creates_peer(msg.msg_type) || !self.create_peer_from_message(&m)) {
            return;
        }
        if msg.msg_type == MessageType::MsgSnapshot as i32 && !self.snapshot_fits(&m) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&region_id) else { return };
        if let Some(from) = &m.from_peer {
            peer.learn_peer(from);
        }
        if let Err(e) = peer.step(msg) {
            tracing::debug!(region_id, "step failed: {e}");
        }
        self.touched.insert(region_id);
    }

    /// A snapshot may be applied only if its range overlaps no other initialized region of
    /// this shard (their data share the RocksDB); otherwise it is dropped and raft resends it
    /// later, typically after this shard applied the split that makes room.
    fn snapshot_fits(&self, m: &RaftMessage) -> bool {
        let snap_region = m
            .message
            .as_ref()
            .and_then(|msg| msg.snapshot.as_ref())
            .and_then(|s| prost::Message::decode(s.data.as_slice()).ok())
            .and_then(|d: net::proto::raft_serverpb::SnapshotData| d.region);
        let Some(r) = snap_region else { return false };
        let overlap = self.peers.values().find(|p| {
            let o = p.region();
            p.region_id() != r.id
                && p.is_initialized()
                && (o.end_key.is_empty() || r.start_key < o.end_key)
                && (r.end_key.is_empty() || o.start_key < r.end_key)
        });
        if let Some(o) = overlap {
            tracing::info!(
                region_id = r.id,
                overlapping = o.region_id(),
                "snapshot overlaps a region of this shard; dropped for now"
            );
        }
        overlap.is_none()
    }

    fn peer_for_request(&mut self, region_id: u64) -> Result<&mut crate::peer::Peer, CmdError> {
        match self.peers.get_mut(&region_id) {
            Some(p) if p.is_initialized() => Ok(p),
            _ => Err(match self.ctx.shard_of(region_id) {
                Some(s) if s != self.ctx.shard_id => region_error::wrong_shard(region_id, s),
                _ => region_error::region_not_found(region_id),
            }),
        }
    }

    pub(super) fn on_write(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        requests: Vec<Request>,
        reply: oneshot::Sender<CmdResult>,
        ticket: Ticket,
    ) {
        if !reply.is_connected() {
            return; // the service gave up on it while it was queued: it is never proposed
        }
        match self.peer_for_request(region_id) {
            Ok(p) => {
                if let Some(index) = p.propose_write(&epoch, requests, reply) {
                    self.ctx.set_stage(Some(ticket), Stage::Proposed { index });
                }
                self.touched.insert(region_id);
            }
            Err(e) => reply.send(Err(e)),
        }
    }

    pub(super) fn on_read(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        req: ReadRequest,
        reply: oneshot::Sender<ReadResult>,
        ticket: Ticket,
    ) {
        if !reply.is_connected() {
            return;
        }
        let ctx = self.ctx.clone();
        match self.peer_for_request(region_id) {
            Ok(p) => {
                let cur = p.epoch();
                if region_error::epoch_is_stale(&epoch, &cur, false, true) {
                    return reply.send(Err(region_error::epoch_not_match(
                        format!("region {region_id} version {} != {}", epoch.version, cur.version),
                        vec![p.region().clone()],
                    )));
                }
                if let Err(e) = p.admit(Work::Read) {
                    return reply.send(Err(e));
                }
                p.read(&ctx, req, reply, Some(ticket));
                self.touched.insert(region_id);
            }
            Err(e) => reply.send(Err(e)),
        }
    }

    pub(super) fn on_admin(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        cmd: AdminCmd,
        reply: oneshot::Sender<CmdResult>,
        ticket: Ticket,
    ) {
        if !reply.is_connected() {
            return;
        }
        self.ctx.set_stage(Some(ticket), Stage::Admin);
        let p = match self.peer_for_request(region_id) {
            Ok(p) => p,
            Err(e) => return reply.send(Err(e)),
        };
        match cmd {
            AdminCmd::ChangePeer { change_type, peer } => p.propose_conf_change(&epoch, change_type, peer, reply),
            AdminCmd::TransferLeader { peer } => p.propose_transfer_leader(&epoch, &peer, reply),
            AdminCmd::Split { split_key } => self.start_split(region_id, epoch, split_key, Some(reply)),
        }
        self.touched.insert(region_id);
    }

    pub(super) fn on_debug(&mut self, region_id: u64, reply: oneshot::Sender<Result<RegionDebug, CmdError>>) {
        let Some(p) = self.peers.get(&region_id) else {
            return reply.send(Err(region_error::region_not_found(region_id)));
        };
        let store = p.raft().store();
        let region = store.region().clone();
        let mut crc = 0u32;
        let mut count = 0u64;
        let scan = self.ctx.engine.scan(&region.start_key, &region.end_key, false, |k, v| {
            crc = crc32c::crc32c_append(crc, &(k.len() as u32).to_le_bytes());
            crc = crc32c::crc32c_append(crc, k);
            crc = crc32c::crc32c_append(crc, &(v.len() as u32).to_le_bytes());
            crc = crc32c::crc32c_append(crc, v);
            count += 1;
            true
        });
        if let Err(e) = scan {
            return reply.send(Err(CmdError::Other(e.to_string())));
        }
        reply.send(Ok(RegionDebug {
            applied_index: store.applied_index(),
            truncated_index: store.truncated().0,
            last_index: p.raft().raft.raft_log.last_index(),
            commit_index: p.raft().raft.raft_log.committed,
            term: p.raft().raft.term,
            is_leader: p.is_leader(),
            checksum: crc as u64,
            key_count: count,
            region,
        }));
    }

    pub(super) fn on_persisted(&mut self, region_id: u64, peer_id: u64, number: u64, msgs: Vec<eraftpb::Message>) {
        if let Some(p) = self.peers.get_mut(&region_id).filter(|p| p.peer_id() == peer_id) {
            p.on_persisted(&self.ctx, number, msgs);
            self.touched.insert(region_id);
        }
    }

    pub(super) fn on_apply_written(&mut self, region_id: u64, peer_id: u64) {
        if let Some(p) = self.peers.get_mut(&region_id).filter(|p| p.peer_id() == peer_id) {
            let effects = p.finish_parked_apply();
            self.after_ready(region_id, effects);
            self.touched.insert(region_id);
        }
    }

    pub(super) fn on_max_ts_synced(&mut self, region_id: u64, term: u64, ts: Option<u64>) {
        if let Some(p) = self.peers.get_mut(&region_id) {
            p.max_ts_synced(term, ts);
        }
    }

    pub(super) fn on_entries_fetched(&mut self, region_id: u64, ctx: GetEntriesContext) {
        if let Some(p) = self.peers.get_mut(&region_id) {
            if p.allows(Work::Raft) {
                p.raft_mut().on_entries_fetched(ctx);
                self.touched.insert(region_id);
            }
        }
    }

    pub(super) fn on_snapshot_generated(&mut self, region_id: u64, snap: Result<Box<Snapshot>, String>) {
        if let Some(p) = self.peers.get_mut(&region_id) {
            p.on_snapshot_generated(snap);
        }
    }

    pub(super) fn on_snapshot_sent(&mut self, region_id: u64, to: u64, ok: bool) {
        if let Some(p) = self.peers.get_mut(&region_id) {
            let status = if ok { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
            p.raft_mut().report_snapshot(to, status);
            self.touched.insert(region_id);
        }
    }

    pub(super) fn on_snapshot_applied(
        &mut self,
        region_id: u64,
        peer_id: u64,
        number: u64,
        msgs: Vec<eraftpb::Message>,
    ) {
        if let Some(p) = self.peers.get_mut(&region_id).filter(|p| p.peer_id() == peer_id) {
            self.ctx.report_range(region_id, Some(p.region()));
            p.on_snapshot_applied(&self.ctx, number, msgs);
            self.touched.insert(region_id);
        }
    }

    /// Side effects of applied entries.
    pub(super) fn after_ready(&mut self, region_id: u64, effects: Vec<ApplyEffect>) {
        for e in effects {
            match e {
                ApplyEffect::Split { left, right } => self.on_split_applied(region_id, *left, *right),
                ApplyEffect::Destroy => self.destroy_peer(region_id, true),
            }
        }
    }
}
