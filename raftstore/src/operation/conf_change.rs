//! Membership changes: add a voter, add a learner (then promote it with an add), remove.
//!
//! *Propose*: the leader checks the epoch (`conf_ver` and `version`) and that the change makes
//! sense for the current membership, then proposes a raft `ConfChange` whose context is the
//! command (with its epoch).
//! *Apply*: every replica checks the epoch again; a stale change is skipped without touching
//! raft's configuration. Otherwise the region's peers change, `conf_ver` grows, raft applies
//! the change, and the region state is written with the batch.
//! *Result*: a removed peer destroys itself; the leader reports the region to PD.

use core_shard::oneshot;
use net::proto::metapb::{self, PeerRole, RegionEpoch};
use net::proto::raft_cmdpb::{self, AdminCmdType, AdminRequest, AdminResponse, ChangePeerRequest, RaftCmdRequest};
use prost::Message;
use raft::eraftpb::{self, ConfChangeType, Entry};

use crate::cmd::{ApplyEffect, CmdError, CmdResponse, CmdResult};
use crate::peer::{Lifecycle, Peer};
use crate::region_error;

fn raft_change_type(t: raft_cmdpb::ConfChangeType) -> ConfChangeType {
    match t {
        raft_cmdpb::ConfChangeType::AddNode => ConfChangeType::AddNode,
        raft_cmdpb::ConfChangeType::RemoveNode => ConfChangeType::RemoveNode,
        raft_cmdpb::ConfChangeType::AddLearnerNode => ConfChangeType::AddLearnerNode,
    }
}

/// Checks a change against the membership; returns the region after it.
fn changed_region(
    region: &metapb::Region,
    change: raft_cmdpb::ConfChangeType,
    peer: &metapb::Peer,
) -> Result<metapb::Region, String> {
    let mut r = region.clone();
    let existing = r.peers.iter().position(|p| p.id == peer.id);
    let same_store = r.peers.iter().position(|p| p.store_id == peer.store_id);
    match change {
        raft_cmdpb::ConfChangeType::AddNode | raft_cmdpb::ConfChangeType::AddLearnerNode => {
            let learner = change == raft_cmdpb::ConfChangeType::AddLearnerNode;
            match existing {
                Some(i) if r.peers[i].role == PeerRole::Learner as i32 && !learner => {
                    r.peers[i].role = PeerRole::Voter as i32;
                }
                Some(_) => return Err(format!("peer {} is already in region {}", peer.id, r.id)),
                None if same_store.is_some() => {
                    return Err(format!("store {} already has a peer of region {}", peer.store_id, r.id))
                }
                None => {
                    let role = if learner { PeerRole::Learner } else { PeerRole::Voter };
                    r.peers.push(metapb::Peer { id: peer.id, store_id: peer.store_id, role: role as i32 });
                }
            }
        }
        raft_cmdpb::ConfChangeType::RemoveNode => match existing {
            Some(i) => {
                r.peers.remove(i);
            }
            None => return Err(format!("peer {} is not in region {}", peer.id, r.id)),
        },
    }
    let e = r.region_epoch.get_or_insert_with(RegionEpoch::default);
    e.conf_ver += 1;
    Ok(r)
}

impl Peer {
    /// Proposes a membership change (leader).
    pub fn propose_conf_change(
        &mut self,
        epoch: &RegionEpoch,
        change: raft_cmdpb::ConfChangeType,
        target: metapb::Peer,
        reply: oneshot::Sender<CmdResult>,
    ) {
        if let Err(e) = self.check_proposal(epoch, true, true) {
            return reply.send(Err(e));
        }
        if let Err(why) = changed_region(self.region(), change, &target) {
            return reply.send(Err(CmdError::Other(why)));
        }
        let me = self.peer_id();
        if change == raft_cmdpb::ConfChangeType::RemoveNode && target.id == me && self.region().peers.len() == 1 {
            return reply.send(Err(CmdError::Other("cannot remove the only peer of a region".into())));
        }
        let demotes_self = change != raft_cmdpb::ConfChangeType::AddNode && target.id == me;
        if demotes_self {
            // A leader never applies its own removal (raft-rs would lose the leader's progress
            // while its appends are still being persisted): hand leadership to the most
            // up-to-date other voter and let the client retry against it.
            return reply.send(hand_over_before_removal(self));
        }
        let cmd = RaftCmdRequest {
            header: Some(self.cmd_header()),
            requests: vec![],
            admin_request: Some(AdminRequest {
                cmd_type: AdminCmdType::ChangePeer as i32,
                change_peer: Some(ChangePeerRequest { change_type: change as i32, peer: Some(target.clone()) }),
                ..Default::default()
            }),
        };
        let cc = eraftpb::ConfChange {
            change_type: raft_change_type(change) as i32,
            node_id: target.id,
            context: cmd.encode_to_vec(),
            ..Default::default()
        };
        let last_before = self.raft().raft.raft_log.last_index();
        match self.raft_mut().propose_conf_change(vec![], cc) {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => {
                return reply.send(Err(region_error::server_is_busy("leadership transfer in progress", 10)));
            }
            Err(e) => return reply.send(Err(CmdError::Other(format!("conf change refused: {e}")))),
        }
        let index = self.raft().raft.raft_log.last_index();
        if index == last_before {
            return reply.send(Err(CmdError::Other("conf change dropped: another one is pending".into())));
        }
        self.track_proposal(index, reply);
    }

    /// Applies a committed conf-change entry.
    pub(super) fn apply_conf_change(&mut self, e: &Entry, effects: &mut Vec<ApplyEffect>) -> CmdResult {
        let cc = eraftpb::ConfChange::decode(e.data.as_slice())
            .map_err(|err| CmdError::Other(format!("conf change {} does not decode: {err}", e.index)))?;
        let cmd = RaftCmdRequest::decode(cc.context.as_slice())
            .map_err(|err| CmdError::Other(format!("conf change context does not decode: {err}")))?;
        let req = cmd
            .admin_request
            .as_ref()
            .and_then(|a| a.change_peer.clone())
            .ok_or_else(|| CmdError::Other("conf change without a change".into()))?;
        let epoch = cmd.header.as_ref().and_then(|h| h.region_epoch.clone()).unwrap_or_default();
        let cur = self.epoch();
        if region_error::epoch_is_stale(&epoch, &cur, true, true) {
            return Err(region_error::epoch_not_match(
                format!("conf change of region {} proposed at an older epoch", self.region_id()),
                vec![self.region().clone()],
            ));
        }
        let change =
            raft_cmdpb::ConfChangeType::from_i32(req.change_type).unwrap_or(raft_cmdpb::ConfChangeType::AddNode);
        let target = req.peer.clone().unwrap_or_default();
        let region = changed_region(self.region(), change, &target).map_err(CmdError::Other)?;
        self.raft_mut()
            .apply_conf_change(&cc)
            .map_err(|err| CmdError::Other(format!("raft refused the change: {err}")))?;
        tracing::info!(region_id = region.id, ?change, peer = target.id, store = target.store_id, conf_ver = ?region.region_epoch, "membership changed");
        self.raft_mut().mut_store().set_region(region.clone());
        if change == raft_cmdpb::ConfChangeType::RemoveNode && target.id == self.peer_id() {
            self.set_lifecycle(Lifecycle::Removing);
            effects.push(ApplyEffect::Destroy);
        }
        Ok(CmdResponse {
            responses: vec![],
            admin: Some(AdminResponse {
                cmd_type: AdminCmdType::ChangePeer as i32,
                region: Some(region),
                left: None,
                right: None,
            }),
        })
    }
}

/// Starts a leadership transfer to the voter with the most of the log; the answer is a
/// retryable busy error.
fn hand_over_before_removal(peer: &mut Peer) -> CmdResult {
    let me = peer.peer_id();
    let voters: Vec<u64> =
        peer.region().peers.iter().filter(|p| p.id != me && p.role == PeerRole::Voter as i32).map(|p| p.id).collect();
    let best = voters
        .iter()
        .filter_map(|id| peer.raft().raft.prs().get(*id).map(|pr| (pr.matched, *id)))
        .max()
        .map(|(_, id)| id);
    let Some(to) = best else {
        return Err(CmdError::Other("cannot remove or demote the leader: no other voter to lead".into()));
    };
    if peer.raft().raft.lead_transferee.is_none() {
        peer.raft_mut().transfer_leader(to);
    }
    Err(region_error::server_is_busy("transferring leadership before removing the leader", 50))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(peers: &[(u64, u64, PeerRole)]) -> metapb::Region {
        metapb::Region {
            id: 1,
            region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
            peers: peers.iter().map(|&(id, store_id, role)| metapb::Peer { id, store_id, role: role as i32 }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn membership_rules() {
        use raft_cmdpb::ConfChangeType::*;
        let r = region(&[(1, 1, PeerRole::Voter), (2, 2, PeerRole::Learner)]);
        let p = |id, store_id| metapb::Peer { id, store_id, role: 0 };
        // Promote a learner.
        let r2 = changed_region(&r, AddNode, &p(2, 2)).unwrap();
        assert_eq!(r2.peers[1].role, PeerRole::Voter as i32);
        assert_eq!(r2.region_epoch.unwrap().conf_ver, 2);
        // A second peer on a store, re-adding, removing a stranger: refused.
        assert!(changed_region(&r, AddNode, &p(3, 1)).is_err());
        assert!(changed_region(&r, AddLearnerNode, &p(2, 2)).is_err());
        assert!(changed_region(&r, RemoveNode, &p(9, 9)).is_err());
        // Add and remove.
        let r3 = changed_region(&r, AddNode, &p(3, 3)).unwrap();
        assert_eq!(r3.peers.len(), 3);
        let r4 = changed_region(&r3, RemoveNode, &p(1, 1)).unwrap();
        assert_eq!(r4.peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2, 3]);
    }
}
