//! Leadership transfer.
//!
//! *Propose*: the leader checks the epoch and that the target is a voter of the region, expires
//! its lease (it must not serve local reads once another peer may lead), and asks raft to
//! transfer. raft sends the target its missing entries and then `TimeoutNow`.
//! *Apply*: none — the transfer is not replicated through the log (as in TiKV); the new
//! leader's first entry is what every replica applies.
//! *Result*: the caller is answered once raft accepted the request; it observes the new leader
//! through `NotLeader` answers or PD.

use core_shard::oneshot;
use net::proto::metapb::{self, PeerRole, RegionEpoch};

use crate::cmd::{CmdError, CmdResponse, CmdResult};
use crate::peer::Peer;

impl Peer {
    /// Starts a transfer to `target` (leader).
    pub fn propose_transfer_leader(
        &mut self,
        epoch: &RegionEpoch,
        target: &metapb::Peer,
        reply: oneshot::Sender<CmdResult>,
    ) {
        if let Err(e) = self.check_proposal(epoch, true, true) {
            return reply.send(Err(e));
        }
        let Some(t) = self
            .region()
            .peers
            .iter()
            .find(|p| p.id == target.id || (target.id == 0 && p.store_id == target.store_id))
            .cloned()
        else {
            return reply.send(Err(CmdError::Other(format!(
                "no peer {} (store {}) in the region",
                target.id, target.store_id
            ))));
        };
        if t.role == PeerRole::Learner as i32 {
            return reply.send(Err(CmdError::Other(format!("peer {} is a learner and cannot lead", t.id))));
        }
        if t.id != self.peer_id() {
            self.expire_lease();
            self.raft_mut().transfer_leader(t.id);
            tracing::info!(region_id = self.region_id(), to = t.id, "leadership transfer started");
        }
        reply.send(Ok(CmdResponse::default()));
    }
}
