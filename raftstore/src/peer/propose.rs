//! What every proposal shares: the checks before proposing (lifecycle, leadership, epoch),
//! the command header, handing the encoded command to raft, and tracking it until its entry
//! applies and it is answered.
//!
//! A proposal is answered when its index applies: with its result if the entry there has its
//! term, with `StaleCommand` if a newer leader replaced it. A leader that loses leadership
//! keeps its proposals (their entries may still commit) until then.

use std::time::Instant;

use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::{RaftCmdRequest, RaftRequestHeader};
use prost::Message;

use super::{Peer, Work};
use crate::cmd::{ApplyEffect, CmdError, CmdResponse, CmdResult};
use crate::region_error;

/// A proposal waiting for its entry to be applied.
pub struct Proposal {
    /// Index of its entry.
    pub index: u64,
    /// Term it was proposed in.
    pub term: u64,
    /// When it was proposed (commit renews the lease from here).
    pub at: Instant,
    /// Where the result goes.
    pub reply: oneshot::Sender<CmdResult>,
}

/// An applied batch whose RocksDB write is finishing on the blocking pool (a write stall):
/// its proposals are answered, and its effects run, once it is written. Until then the peer
/// handles no ready, so nothing applies out of order.
pub struct ParkedApply {
    /// `(index, term, result)` of every applied entry, in order.
    pub results: Vec<(u64, u64, Option<CmdResult>)>,
    /// What the shard must do once the batch is written.
    pub effects: Vec<ApplyEffect>,
}

impl Peer {
    /// Parks an applied batch until its write finishes.
    pub fn park_apply(&mut self, parked: ParkedApply) {
        self.parked_apply = Some(parked);
    }

    /// The parked batch, once its write finished.
    pub fn take_parked_apply(&mut self) -> Option<ParkedApply> {
        self.parked_apply.take()
    }

    /// Checks that this peer may take a command of `epoch` now (`conf_ver`, `version`: which
    /// parts of the epoch must match).
    pub fn check_proposal(&self, epoch: &RegionEpoch, conf_ver: bool, version: bool) -> Result<(), CmdError> {
        self.admit(Work::Propose)?;
        if !self.is_leader() {
            return Err(region_error::not_leader(self.region_id(), self.leader()));
        }
        let cur = self.epoch();
        if region_error::epoch_is_stale(epoch, &cur, conf_ver, version) {
            return Err(region_error::epoch_not_match(
                format!(
                    "epoch (conf_ver {}, version {}) does not match region {} (conf_ver {}, version {})",
                    epoch.conf_ver,
                    epoch.version,
                    self.region_id(),
                    cur.conf_ver,
                    cur.version
                ),
                vec![self.region().clone()],
            ));
        }
        Ok(())
    }

    /// The header of a command proposed now.
    pub fn cmd_header(&self) -> RaftRequestHeader {
        RaftRequestHeader {
            region_id: self.region_id(),
            peer: Some(self.meta.clone()),
            region_epoch: Some(self.epoch()),
        }
    }

    /// Proposes an encoded command and tracks it until its entry applies. Returns the
    /// entry's index, or `None` when raft refused it (`reply` is answered then).
    pub fn propose_cmd(&mut self, cmd: RaftCmdRequest, reply: oneshot::Sender<CmdResult>) -> Option<u64> {
        let last_before = self.raw_node.raft.raft_log.last_index();
        match self.raw_node.propose(vec![], cmd.encode_to_vec()) {
            Ok(()) => {}
            // A leader drops proposals while it transfers leadership: retry shortly.
            Err(raft::Error::ProposalDropped) => {
                reply.send(Err(region_error::server_is_busy("leadership transfer in progress", 10)));
                return None;
            }
            Err(e) => {
                reply.send(Err(CmdError::Other(format!("proposal refused: {e}"))));
                return None;
            }
        }
        let index = self.raw_node.raft.raft_log.last_index();
        if index == last_before {
            // Dropped by raft (e.g. a leadership transfer in progress).
            reply.send(Err(region_error::not_leader(self.region_id(), self.leader())));
            return None;
        }
        self.track_proposal(index, reply);
        Some(index)
    }

    /// Tracks a proposal whose entry raft appended at `index`, in the current term, until
    /// it applies (commands proposed through another raft call, such as a membership change,
    /// come here directly).
    pub fn track_proposal(&mut self, index: u64, reply: oneshot::Sender<CmdResult>) {
        let term = self.raw_node.raft.term;
        self.proposals.push_back(Proposal { index, term, at: Instant::now(), reply });
    }

    /// Whether proposals wait for their entries.
    pub fn has_proposals(&self) -> bool {
        !self.proposals.is_empty()
    }

    /// Answers the proposals up to `index`: the one at `index` with `result` if its term
    /// matches, earlier or replaced ones with `StaleCommand`.
    pub fn finish_proposals(&mut self, index: u64, term: u64, result: Option<CmdResult>) {
        self.one_pc.applied(index);
        let mut result = result;
        while let Some(p) = self.proposals.front() {
            if p.index > index {
                break;
            }
            let Some(p) = self.proposals.pop_front() else { break };
            if p.index == index && p.term == term {
                if self.is_leader() && term == self.raw_node.raft.term {
                    self.renew_lease(p.at);
                }
                p.reply.send(result.take().unwrap_or_else(|| Ok(CmdResponse::default())));
            } else {
                p.reply.send(Err(region_error::stale_command("the entry was replaced by a newer leader")));
            }
        }
    }
}
