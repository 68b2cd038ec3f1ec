//! Peers coming and going on a shard: created by a leader's message, by a split, or by a
//! handover from another shard; destroyed when removed from their region or handed over.
//!
//! **Handover** moves a region between shards of the store (split placement now, shard
//! balance later). The source stops taking proposals, waits for those in flight to apply and
//! for its appends to be durable, pauses the peer and sends the target its region state
//! (with `handover_seq + 1`), apply state, hard state, live log entries and data. The target
//! writes all of it durably, creates the peer and says done; the source then drops its copy.
//! A crash in between leaves the region on both shards: at start-up the copy with the higher
//! `handover_seq` wins.

use bytes::Bytes;
use net::proto::metapb::Region;
use net::proto::raft_serverpb::{PeerState, RaftMessage, RegionLocalState};
use rocksdb::WriteBatch;

use super::msg::{Event, Handover, Landed, ShardMsg};
use super::Shard;
use crate::engine::{delete_data_range, put_msg};
use crate::keys;
use crate::peer::Peer;
use crate::region_error;
use crate::storage::{decode_entry, encode_entry, PeerStorage};

/// Whether a tombstone of a region makes a message for it stale: it comes from a membership
/// no newer than the one this store was removed in, or it is addressed to the removed peer
/// (or an older one) of this store.
///
/// Creating a peer for such a message would resurrect a removed voter with an empty log; a
/// candidate still in the old membership would get its vote (an empty log is never more
/// up to date) and could be elected without the entries a newer quorum committed — two
/// leaders, acknowledged writes lost. The matrix found exactly that (a removed peer
/// re-created 0.4 s later, the stale candidate elected 4 ms after). A genuine re-add always
/// comes with a newer `conf_ver` and a new peer id.
fn tombstone_covers(tombstone: &RegionLocalState, m: &RaftMessage) -> bool {
    let region = tombstone.region.as_ref();
    let removed_at = region.and_then(|r| r.region_epoch.as_ref()).map_or(0, |e| e.conf_ver);
    let theirs = m.region_epoch.as_ref().map_or(0, |e| e.conf_ver);
    let Some(to) = &m.to_peer else { return true };
    let removed_peer = region.and_then(|r| r.peers.iter().find(|p| p.store_id == to.store_id)).map(|p| p.id);
    theirs <= removed_at || removed_peer.is_some_and(|id| to.id <= id)
}

impl Shard {
    /// Creates an uninitialized peer for a region a leader's message names. Returns whether
    /// it did.
    pub(super) fn create_peer_from_message(&mut self, m: &RaftMessage) -> bool {
        let region_id = m.region_id;
        let Some(to) = m.to_peer.clone() else { return false };
        if let Ok(Some(state)) = self.ctx.engine.get_msg::<RegionLocalState>(&keys::region_state_key(region_id)) {
            if state.state == PeerState::Tombstone as i32 && tombstone_covers(&state, m) {
                tracing::debug!(region_id, peer = to.id, "message for a removed peer dropped");
                return false;
            }
            if state.state == PeerState::Normal as i32 {
                return false; // initialized elsewhere on disk: handled at start-up
            }
        }
        // Entries in the log for a region this shard has no live peer of belong to a destroyed
        // incarnation whose log removal did not land (the store stopped first): the new peer
        // starts empty, or raft-rs would take them for its own and ask for index 1. A hard
        // state alone is an uninitialized peer's term and vote: kept, so a restart cannot make
        // it vote twice in a term.
        if self.ctx.log.entry_count(region_id) > 0 {
            tracing::info!(region_id, "dropping the raft log of a destroyed incarnation of the region");
            match self.ctx.log.remove(region_id) {
                Ok(d) => drop(d),
                Err(e) => {
                    tracing::warn!(region_id, "cannot drop a stale raft log: {e}");
                    return false;
                }
            }
        }
        let region = Region { id: region_id, ..Default::default() };
        let apply = Default::default();
        match Peer::new(&self.ctx, region, to.clone(), apply) {
            Ok(peer) => {
                tracing::info!(region_id, peer = to.id, "created peer from a leader's message");
                self.peers.insert(region_id, peer);
                self.ctx.count_region(1);
                if self.ctx.shard_of(region_id) != Some(self.ctx.shard_id) {
                    self.ctx.announce(region_id, Some(self.ctx.shard_id));
                }
                true
            }
            Err(e) => {
                tracing::warn!(region_id, "cannot create peer: {e}");
                false
            }
        }
    }

    /// Destroys a peer. `tombstone`: it was removed from its region (keep a tombstone and
    /// delete its data); otherwise it is only replaced.
    ///
    /// An uninitialized peer has nothing in RocksDB: its log is dropped at once, so a new peer
    /// of the region can start right away. An initialized one is destroyed in order — the
    /// tombstone and data deletion made durable first, then the log dropped — and messages for
    /// the region are ignored until that is done.
    pub(super) fn destroy_peer(&mut self, region_id: u64, tombstone: bool) {
        let Some(mut peer) = self.peers.remove(&region_id) else { return };
        // A removed peer's proposals may have been committed by the others: not retryable.
        peer.fail_pending(
            || region_error::undetermined(&format!("region {region_id} left this store")),
            || region_error::region_not_found(region_id),
        );
        if peer.is_leader() {
            self.ctx.count_leader(-1);
        }
        self.ctx.count_region(-1);
        tracing::info!(region_id, peer = peer.meta.id, tombstone, "peer destroyed");
        if peer.is_initialized() {
            self.ctx.report_range(region_id, None);
        }
        let region = peer.region().clone();
        if !peer.is_initialized() {
            if tombstone {
                // It may have been a voter (promoted before its snapshot arrived): a tombstone
                // naming it keeps messages for it from re-creating it (`tombstone_covers`).
                // Written at once (a message may follow immediately), without the WAL: it
                // becomes durable with the shard's next flush.
                let state = RegionLocalState {
                    state: PeerState::Tombstone as i32,
                    region: Some(Region { id: region_id, peers: vec![peer.meta.clone()], ..Default::default() }),
                    handover_seq: 0,
                };
                let mut wb = WriteBatch::default();
                put_msg(&mut wb, &keys::region_state_key(region_id), &state);
                if let Err(e) = self.ctx.engine.write(wb) {
                    tracing::warn!(region_id, "tombstone of an uninitialized peer not written: {e}");
                }
            }
            match self.ctx.log.remove(region_id) {
                Ok(d) => drop(d),
                Err(e) => tracing::warn!(region_id, "log remove failed: {e}"),
            }
            return;
        }
        let mut wb = WriteBatch::default();
        delete_data_range(&mut wb, &region.start_key, &region.end_key);
        let state = RegionLocalState {
            state: if tombstone { PeerState::Tombstone as i32 } else { PeerState::Normal as i32 },
            region: Some(region),
            handover_seq: peer.handover_seq,
        };
        if tombstone {
            put_msg(&mut wb, &keys::region_state_key(region_id), &state);
        } else {
            wb.delete(keys::region_state_key(region_id));
        }
        wb.delete(keys::apply_state_key(region_id));
        self.destroying.insert(region_id);
        let ctx = self.ctx.clone();
        glommio::spawn_local(async move {
            // The tombstone must be durable before the log forgets the region, or a restart
            // would find a live region without its log.
            match ctx.engine.write_durable(wb).await {
                Ok(()) => match ctx.log.remove(region_id) {
                    Ok(d) => drop(d),
                    Err(e) => tracing::warn!(region_id, "log remove failed: {e}"),
                },
                Err(e) => tracing::error!(region_id, "destroying peer failed: {e}"),
            }
            ctx.push(Event::Destroyed { region_id });
        })
        .detach();
    }

    /// A destroyed peer's state is gone: messages for the region count again.
    pub(super) fn on_destroyed(&mut self, region_id: u64) {
        self.destroying.remove(&region_id);
    }

    /// A split applied here: create the new region's peer.
    pub(super) fn on_split_applied(&mut self, region_id: u64, left: Region, right: Region) {
        core_shard::crash_point!("split::apply::after");
        self.ctx.report_range(left.id, Some(&left));
        let store_id = self.ctx.store_id.get();
        let is_leader = self.peers.get(&region_id).is_some_and(|p| p.is_leader());
        if let Some(existing) = self.peers.get(&right.id) {
            if existing.is_initialized() {
                return;
            }
            self.destroy_peer(right.id, false);
        } else if let Some(s) = self.ctx.shard_of(right.id).filter(|&s| s != self.ctx.shard_id) {
            // The new region already lives on another shard (it got a snapshot there):
            // our copy of its range is stale.
            tracing::info!(region_id = right.id, shard = s, "split target exists on another shard");
            let mut wb = WriteBatch::default();
            delete_data_range(&mut wb, &right.start_key, &right.end_key);
            wb.delete(keys::region_state_key(right.id));
            wb.delete(keys::apply_state_key(right.id));
            let _ = self.ctx.engine.write(wb);
            return;
        }
        let Some(me) = right.peers.iter().find(|p| p.store_id == store_id).cloned() else { return };
        self.ctx.report_range(right.id, Some(&right));
        match Peer::new(&self.ctx, right.clone(), me, PeerStorage::initial_apply_state()) {
            Ok(mut peer) => {
                if is_leader {
                    // The new region's peer next to the old leader campaigns at once.
                    let _ = peer.raw_node.campaign();
                }
                self.peers.insert(right.id, peer);
                self.touched.insert(right.id);
                self.ctx.count_region(1);
                self.ctx.announce(right.id, Some(self.ctx.shard_id));
                crate::router::send(&self.ctx, 0, ShardMsg::Created { region_id: right.id, shard: self.ctx.shard_id });
            }
            Err(e) => tracing::error!(region_id = right.id, "cannot create the split's peer: {e}"),
        }
        if is_leader {
            let ctx = self.ctx.clone();
            glommio::spawn_local(async move {
                if let Err(e) = ctx.pd.report_split(left, right).await {
                    tracing::warn!("report split: {e}");
                }
            })
            .detach();
        }
    }

    /// The coordinator asks to move `region_id` to `to_shard`: stop taking proposals first.
    pub(super) fn on_handover_out(&mut self, region_id: u64, to_shard: usize) {
        if to_shard == self.ctx.shard_id || to_shard >= self.ctx.shards {
            return;
        }
        if let Some(p) = self.peers.get_mut(&region_id).filter(|p| p.is_initialized() && p.handover_to.is_none()) {
            p.handover_to = Some(to_shard);
            self.touched.insert(region_id);
        }
    }

    /// Starts the transfer once nothing of the peer is in flight.
    pub(super) fn maybe_start_handover(&mut self, region_id: u64) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let Some(to) = p.handover_to else { return };
        if p.paused || p.applying_snapshot || p.unpersisted > 0 || !p.proposals.is_empty() || p.raw_node.has_ready() {
            return;
        }
        let Ok(snap) = self.ctx.engine.snapshot() else { return };
        p.paused = true;
        p.lease.expire();
        // A paused peer hears no read index: its waiting reads retry (and find the region
        // at its new shard) rather than wait for the whole transfer.
        p.reads.fail_all(&|| region_error::server_is_busy("region is moving between shards", 20));
        let store = p.raw_node.store();
        let region = store.region().clone();
        let apply = store.apply_state().clone();
        let hard_state = store.hard_state();
        let (truncated, _) = store.truncated();
        let last = p.raw_node.raft.raft_log.last_index();
        let state = RegionLocalState {
            state: PeerState::Normal as i32,
            region: Some(region.clone()),
            handover_seq: p.handover_seq + 1,
        };
        let ctx = self.ctx.clone();
        self.handovers_in_flight.insert(region_id);
        tracing::info!(region_id, from = ctx.shard_id, to, "handing region over");
        glommio::spawn_local(async move {
            let entries = if last > truncated {
                match ctx.log.entries(region_id, truncated + 1, last + 1, None).await {
                    Ok(v) => v.iter().filter_map(|e| decode_entry(e).ok()).collect(),
                    Err(e) => {
                        tracing::warn!(region_id, "handover: cannot read the log: {e}");
                        ctx.push(Event::HandoverFailed { region_id });
                        return;
                    }
                }
            } else {
                Vec::new()
            };
            let r2 = region.clone();
            let data = glommio::executor()
                .spawn_blocking(move || {
                    let mut out = Vec::new();
                    snap.scan(&r2.start_key, &r2.end_key, |k, v| {
                        out.push((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
                        true
                    })
                    .map(|()| out)
                })
                .await;
            let Ok(data) = data else {
                ctx.push(Event::HandoverFailed { region_id });
                return;
            };
            let h = Handover { state, apply, hard_state, entries, data, from_shard: ctx.shard_id };
            if ctx.outbox.send(to, ShardMsg::HandoverIn(Box::new(h))).await.is_err() {
                ctx.push(Event::HandoverFailed { region_id });
            }
        })
        .detach();
    }

    /// A region arrives: write it durably, then create the peer.
    pub(super) fn on_handover_in(&mut self, h: Handover) {
        let region = h.state.region.clone().unwrap_or_default();
        let region_id = region.id;
        let mut wb = WriteBatch::default();
        delete_data_range(&mut wb, &region.start_key, &region.end_key);
        for (k, v) in &h.data {
            wb.put(keys::data_key(k), v);
        }
        put_msg(&mut wb, &keys::region_state_key(region_id), &h.state);
        put_msg(&mut wb, &keys::apply_state_key(region_id), &h.apply);
        let ctx = self.ctx.clone();
        glommio::spawn_local(async move {
            let fail = |ctx: &super::ctx::ShardCtx| {
                let _ = ctx.outbox.try_send(h.from_shard, ShardMsg::HandoverFailed { region_id });
            };
            if let Err(e) = ctx.engine.write_durable(wb).await {
                tracing::error!(region_id, "handover write failed: {e}");
                return fail(&ctx);
            }
            let (truncated, _) = h.apply.truncated_state.as_ref().map_or((0, 0), |t| (t.index, t.term));
            let hs = core_shard::log::HardState {
                term: h.hard_state.term,
                vote: h.hard_state.vote,
                commit: h.hard_state.commit,
            };
            let log = &ctx.log;
            let entries: Vec<_> = h.entries.iter().map(encode_entry).collect();
            let written = log
                .remove(region_id)
                .and_then(|d| {
                    drop(d);
                    log.compact(region_id, truncated + 1)
                })
                .and_then(|d| {
                    drop(d);
                    log.append(region_id, entries, Some(hs))
                });
            let durable = match written {
                Ok(d) => d.await.is_ok(),
                Err(_) => false,
            };
            if durable {
                ctx.push(Event::HandoverLanded(Box::new(Landed {
                    state: h.state,
                    apply: h.apply,
                    from_shard: h.from_shard,
                })))
            } else {
                fail(&ctx)
            }
        })
        .detach();
    }

    /// The handed-over region is durable here: start its peer.
    pub(super) fn on_handover_landed(&mut self, l: Landed) {
        let region = l.state.region.clone().unwrap_or_default();
        let region_id = region.id;
        let store_id = self.ctx.store_id.get();
        let Some(me) = region.peers.iter().find(|p| p.store_id == store_id).cloned() else { return };
        match Peer::new(&self.ctx, region, me, l.apply) {
            Ok(mut peer) => {
                peer.handover_seq = l.state.handover_seq;
                self.peers.insert(region_id, peer);
                self.touched.insert(region_id);
                self.ctx.count_region(1);
                self.ctx.announce(region_id, Some(self.ctx.shard_id));
                let _ = self.ctx.outbox.try_send(l.from_shard, ShardMsg::HandoverDone { region_id });
                tracing::info!(region_id, shard = self.ctx.shard_id, "region arrived from shard {}", l.from_shard);
            }
            Err(e) => {
                tracing::error!(region_id, "cannot start handed-over peer: {e}");
                let _ = self.ctx.outbox.try_send(l.from_shard, ShardMsg::HandoverFailed { region_id });
            }
        }
    }

    /// The target has the region: drop ours (its data, state and log here).
    pub(super) fn on_handover_done(&mut self, region_id: u64) {
        self.handovers_in_flight.remove(&region_id);
        let Some(mut peer) = self.peers.remove(&region_id) else { return };
        if peer.is_leader() {
            self.ctx.count_leader(-1);
        }
        self.ctx.count_region(-1);
        let moved = || region_error::server_is_busy("region moved to another shard", 5);
        peer.fail_pending(moved, moved);
        let region = peer.region().clone();
        let mut wb = WriteBatch::default();
        delete_data_range(&mut wb, &region.start_key, &region.end_key);
        wb.delete(keys::region_state_key(region_id));
        wb.delete(keys::apply_state_key(region_id));
        if let Err(e) = self.ctx.engine.write(wb) {
            tracing::warn!(region_id, "handover cleanup failed: {e}");
        }
        match self.ctx.log.remove(region_id) {
            Ok(d) => drop(d),
            Err(e) => tracing::warn!(region_id, "handover log cleanup failed: {e}"),
        }
    }

    /// The target could not take the region: resume it here.
    pub(super) fn on_handover_failed(&mut self, region_id: u64) {
        self.handovers_in_flight.remove(&region_id);
        if let Some(p) = self.peers.get_mut(&region_id) {
            tracing::warn!(region_id, "handover failed; region stays on shard {}", self.ctx.shard_id);
            p.paused = false;
            p.handover_to = None;
            self.touched.insert(region_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use net::proto::metapb::{Peer as MetaPeer, RegionEpoch};

    use super::*;

    fn tombstone(conf_ver: u64, peers: &[(u64, u64)]) -> RegionLocalState {
        RegionLocalState {
            state: PeerState::Tombstone as i32,
            region: Some(Region {
                id: 2,
                region_epoch: Some(RegionEpoch { conf_ver, version: 1 }),
                peers: peers.iter().map(|&(id, store_id)| MetaPeer { id, store_id, role: 0 }).collect(),
                ..Default::default()
            }),
            handover_seq: 0,
        }
    }

    fn msg(conf_ver: u64, to: u64, store: u64) -> RaftMessage {
        RaftMessage {
            region_id: 2,
            to_peer: Some(MetaPeer { id: to, store_id: store, role: 0 }),
            region_epoch: Some(RegionEpoch { conf_ver, version: 1 }),
            ..Default::default()
        }
    }

    #[test]
    fn tombstones_keep_removed_peers_from_being_recreated() {
        // Peer 9 on store 5 applied its own removal at conf_ver 10: its tombstone's region no
        // longer lists store 5.
        let own_removal = tombstone(10, &[(3, 1), (8, 4)]);
        assert!(tombstone_covers(&own_removal, &msg(9, 9, 5)), "a candidate of the old membership");
        assert!(tombstone_covers(&own_removal, &msg(10, 9, 5)), "the membership it was removed in");
        assert!(!tombstone_covers(&own_removal, &msg(12, 14, 5)), "re-added under a new id");
        // Removed while away: the tombstone still lists the peer (conf_ver it knew: 8).
        let away = tombstone(8, &[(3, 1), (9, 5)]);
        assert!(tombstone_covers(&away, &msg(9, 9, 5)), "a newer membership, but the removed peer id");
        assert!(tombstone_covers(&away, &msg(9, 7, 5)), "an even older peer id");
        assert!(!tombstone_covers(&away, &msg(11, 14, 5)), "re-added under a new id");
        // An uninitialized peer's tombstone knows only its id.
        let uninit = tombstone(0, &[(9, 5)]);
        assert!(tombstone_covers(&uninit, &msg(9, 9, 5)));
        assert!(!tombstone_covers(&uninit, &msg(9, 14, 5)));
    }
}
