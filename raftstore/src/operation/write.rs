//! Normal writes (put, delete, delete range, compare-and-swap): propose after checking
//! leadership, epoch and key range; apply is in `peer::apply`; the result answers the
//! proposal when its entry applies.

use std::time::Instant;

use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::{CmdType, RaftCmdRequest, RaftRequestHeader, Request};
use prost::Message;

use crate::keys;
use crate::peer::{Peer, Proposal};
use crate::region_error;
use crate::shard::msg::{CmdError, CmdResult};

/// The keys a request touches (a range's start and, if any, its end).
fn request_keys(r: &Request) -> Vec<&[u8]> {
    match CmdType::from_i32(r.cmd_type) {
        Some(CmdType::Put) => r.put.iter().map(|p| &p.key[..]).collect(),
        Some(CmdType::Delete) => r.delete.iter().map(|d| &d.key[..]).collect(),
        Some(CmdType::Cas) => r.cas.iter().map(|c| &c.key[..]).collect(),
        Some(CmdType::DeleteRange) => r.delete_range.iter().map(|d| &d.start_key[..]).collect(),
        _ => Vec::new(),
    }
}

impl Peer {
    /// Checks that this peer may take a command of `epoch` now.
    pub fn check_proposal(&self, epoch: &RegionEpoch, conf_ver: bool, version: bool) -> Result<(), CmdError> {
        if self.paused {
            return Err(region_error::server_is_busy("region is moving between shards", 20));
        }
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

    /// Proposes a normal write; returns its entry's index if it was proposed (otherwise
    /// `reply` has its answer already).
    pub fn propose_write(
        &mut self,
        epoch: &RegionEpoch,
        requests: Vec<Request>,
        reply: oneshot::Sender<CmdResult>,
    ) -> Option<u64> {
        if let Err(e) = self.check_proposal(epoch, false, true) {
            reply.send(Err(e));
            return None;
        }
        let region = self.region();
        for r in &requests {
            for k in request_keys(r) {
                if !keys::in_range(k, &region.start_key, &region.end_key) {
                    reply.send(Err(region_error::key_not_in_region(k, region)));
                    return None;
                }
            }
        }
        let mut header = self.cmd_header();
        header.region_epoch = Some(epoch.clone());
        let cmd = RaftCmdRequest { header: Some(header), requests, admin_request: None };
        self.propose_cmd(cmd, reply)
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
        let term = self.raw_node.raft.term;
        self.proposals.push_back(Proposal { index, term, at: Instant::now(), reply });
        Some(index)
    }
}
