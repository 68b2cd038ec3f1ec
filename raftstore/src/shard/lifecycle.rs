//! Peers coming and going on a shard: created by a leader's message, destroyed when removed
//! from their region (peers created by a split or a handover are in `operation::split` and
//! `operation::handover`), and the tombstones that keep removed peers from coming back.

use net::proto::metapb::Region;
use net::proto::raft_serverpb::{PeerState, RaftMessage, RegionLocalState};
use rocksdb::WriteBatch;

use super::Shard;
use crate::engine::{put_msg, WriteError};
use crate::keys;
use crate::msg::Event;
use crate::peer::Peer;
use crate::region_error;

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
    pub(crate) fn destroy_peer(&mut self, region_id: u64, tombstone: bool) {
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
        tracing::info!(region_id, peer = peer.peer_id(), tombstone, "peer destroyed");
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
                    region: Some(Region { id: region_id, peers: vec![peer.meta().clone()], ..Default::default() }),
                    handover_seq: 0,
                };
                let mut wb = WriteBatch::default();
                put_msg(&mut wb, &keys::region_state_key(region_id), &state);
                match self.ctx.engine.write(wb) {
                    Ok(()) => {}
                    Err(WriteError::Stalled(wb)) => {
                        // Messages for the region wait until the tombstone is in.
                        self.destroying.insert(region_id);
                        let ctx = self.ctx.clone();
                        glommio::spawn_local(async move {
                            if let Err(e) = ctx.engine.write_stalled(wb).await {
                                tracing::warn!(region_id, "tombstone of an uninitialized peer not written: {e}");
                            }
                            ctx.push(Event::Destroyed { region_id });
                        })
                        .detach();
                    }
                    Err(e) => tracing::warn!(region_id, "tombstone of an uninitialized peer not written: {e}"),
                }
            }
            match self.ctx.log.remove(region_id) {
                Ok(d) => drop(d),
                Err(e) => tracing::warn!(region_id, "log remove failed: {e}"),
            }
            return;
        }
        let mut wb = WriteBatch::default();
        self.ctx.engine.clear_region(&mut wb, &region);
        if tombstone {
            let state = RegionLocalState {
                state: PeerState::Tombstone as i32,
                region: Some(region),
                handover_seq: peer.handover_seq(),
            };
            put_msg(&mut wb, &keys::region_state_key(region_id), &state);
        }
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
