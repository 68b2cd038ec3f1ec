//! The store's side of PD scheduling: region heartbeats (with lagging and down peers),
//! carrying out PD's operator steps, and telling stale peers they were removed.

use core_shard::oneshot;
use net::proto::metapb::Region;
use net::proto::pdpb::{operator_step::Step, OperatorStep};
use net::proto::raft_cmdpb::ConfChangeType;
use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb;

use net::proto::pdpb::RegionHeartbeatRequest;

use super::Shard;
use crate::msg::Event;
use crate::peer::Work;

impl Shard {
    /// A step of a PD operator: the leader carries it out if the epoch still matches.
    pub(super) fn on_operator(&mut self, step: OperatorStep) {
        let region_id = step.region_id;
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let epoch = step.region_epoch.clone().unwrap_or_default();
        if !p.is_leader() || p.epoch() != epoch || !p.allows(Work::Maintain) {
            return;
        }
        let (tx, _rx) = oneshot::channel();
        match step.step {
            Some(Step::AddLearner(peer)) => p.propose_conf_change(&epoch, ConfChangeType::AddLearnerNode, peer, tx),
            Some(Step::PromoteLearner(peer)) => p.propose_conf_change(&epoch, ConfChangeType::AddNode, peer, tx),
            Some(Step::RemovePeer(peer)) => p.propose_conf_change(&epoch, ConfChangeType::RemoveNode, peer, tx),
            Some(Step::TransferLeader(peer)) => p.propose_transfer_leader(&epoch, &peer, tx),
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
        let addressed_to_me = m.to_peer.as_ref().is_some_and(|t| t.id == p.peer_id());
        if addressed_to_me && theirs.conf_ver > mine.conf_ver {
            tracing::info!(
                region_id = m.region_id,
                peer = p.peer_id(),
                "removed from the region while away; destroying"
            );
            self.destroy_peer(m.region_id, true);
        }
    }

    /// Region heartbeats to PD from the leaders that have news (`all`: every leader); PD's
    /// answer may carry an operator step.
    pub(super) fn send_region_heartbeats(&mut self, all: bool) {
        for p in self.peers.values_mut() {
            let due = p.take_heartbeat_due();
            if !p.is_leader() || !(all || due) {
                continue;
            }
            let (pending_peers, down_peers) = lagging_peers(p);
            let req = RegionHeartbeatRequest {
                header: None,
                region: Some(p.region().clone()),
                leader: Some(p.meta().clone()),
                leader_shard: self.ctx.shard_id as u32,
                down_peers,
                pending_peers,
                approximate_size: p.approximate().0,
                approximate_keys: p.approximate().1,
                term: p.raft().raft.term,
            };
            let ctx = self.ctx.clone();
            glommio::spawn_local(async move {
                match ctx.pd.region_heartbeat(req).await {
                    Ok(Some(step)) => ctx.push(Event::Operator(Box::new(step))),
                    Ok(None) => {}
                    Err(e) => tracing::debug!("region heartbeat: {e}"),
                }
            })
            .detach();
        }
    }
}

/// Peers the leader sees lagging (pending: needs a snapshot or has not caught up to the
/// log's start) and silent (down: not heard from within an election timeout).
fn lagging_peers(p: &crate::peer::Peer) -> (Vec<net::proto::metapb::Peer>, Vec<net::proto::metapb::Peer>) {
    let (truncated, _) = p.raft().store().truncated();
    let mut pending = Vec::new();
    let mut down = Vec::new();
    for (id, pr) in p.raft().raft.prs().iter() {
        if *id == p.peer_id() {
            continue;
        }
        let Some(peer) = p.peer_by_id(*id).cloned() else { continue };
        if pr.state == raft::ProgressState::Snapshot || pr.matched < truncated || pr.matched == 0 {
            pending.push(peer.clone());
        }
        if !pr.recent_active {
            down.push(peer);
        }
    }
    (pending, down)
}
