//! Scheduling on the store side: carrying out PD's operator steps, telling stale peers they
//! were removed, and moving regions between this store's shards (shard balance).

use core_shard::oneshot;
use net::proto::metapb::Region;
use net::proto::pdpb::{operator_step::Step, OperatorStep};
use net::proto::raft_cmdpb::ConfChangeType;
use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb;

use super::Shard;
use crate::operation::{conf_change, transfer_leader};

impl Shard {
    /// A step of a PD operator: the leader carries it out if the epoch still matches.
    pub(super) fn on_operator(&mut self, step: OperatorStep) {
        let region_id = step.region_id;
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let epoch = step.region_epoch.clone().unwrap_or_default();
        if !p.is_leader() || p.epoch() != epoch || p.paused || p.handover_to.is_some() {
            return;
        }
        let (tx, _rx) = oneshot::channel();
        match step.step {
            Some(Step::AddLearner(peer)) => conf_change::propose(p, &epoch, ConfChangeType::AddLearnerNode, peer, tx),
            Some(Step::PromoteLearner(peer)) => conf_change::propose(p, &epoch, ConfChangeType::AddNode, peer, tx),
            Some(Step::RemovePeer(peer)) => conf_change::propose(p, &epoch, ConfChangeType::RemoveNode, peer, tx),
            Some(Step::TransferLeader(peer)) => transfer_leader::propose(p, &epoch, &peer, tx),
            None => return,
        }
        self.touched.insert(region_id);
    }

    /// A message from a peer the region no longer has, at an older membership: tell it so,
    /// so that it destroys itself (it was removed while its store was away).
    pub(super) fn reply_tombstone(&self, region: &Region, m: &RaftMessage) -> bool {
        let Some(from) = &m.from_peer else { return false };
        if region.peers.iter().any(|p| p.id == from.id) {
            return false;
        }
        let cur = region.region_epoch.clone().unwrap_or_default();
        let theirs = m.region_epoch.clone().unwrap_or_default();
        if theirs.conf_ver >= cur.conf_ver {
            return false;
        }
        let Some(me) = m.to_peer.clone() else { return false };
        let reply = RaftMessage {
            region_id: region.id,
            from_peer: Some(me),
            to_peer: Some(from.clone()),
            message: Some(eraftpb::Message::default()),
            region_epoch: Some(cur),
            is_tombstone: true,
            start_key: region.start_key.clone(),
            end_key: region.end_key.clone(),
        };
        self.ctx.transport.send(from.store_id, reply);
        true
    }

    /// A tombstone message: this peer was removed from its region in a newer membership.
    pub(super) fn on_tombstone(&mut self, m: &RaftMessage) {
        let Some(p) = self.peers.get(&m.region_id) else { return };
        let theirs = m.region_epoch.clone().unwrap_or_default();
        let mine = p.epoch();
        let addressed_to_me = m.to_peer.as_ref().is_some_and(|t| t.id == p.meta.id);
        if addressed_to_me && theirs.conf_ver > mine.conf_ver {
            tracing::info!(region_id = m.region_id, peer = p.meta.id, "removed from the region while away; destroying");
            self.destroy_peer(m.region_id, true);
        }
    }

    /// Shard balance: move one region of this shard to `to_shard` — a leader when this shard
    /// leads more regions than the target, a follower otherwise.
    pub(super) fn on_rebalance(&mut self, to_shard: usize) {
        if !self.handovers_in_flight.is_empty() || self.peers.values().any(|p| p.handover_to.is_some()) {
            return;
        }
        let leaders = &self.ctx.shared.leader_counts;
        let more_leaders_here = leaders[self.ctx.shard_id].load(std::sync::atomic::Ordering::Relaxed)
            > leaders.get(to_shard).map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed));
        let candidates = || {
            self.peers
                .values()
                .filter(|p| p.is_initialized() && !p.paused && !p.applying_snapshot && p.splitting.is_none())
        };
        let pick = candidates()
            .find(|p| p.is_leader() == more_leaders_here)
            .or_else(|| candidates().next())
            .map(|p| p.region_id());
        if let Some(region_id) = pick {
            self.ctx.shared.shard_moves.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.on_handover_out(region_id, to_shard);
        }
    }
}
