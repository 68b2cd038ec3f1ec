//! Operator commands (change peer, transfer leader, split) and the debug read of a region:
//! one function per request.

use core_shard::oneshot;
use net::proto::adminpb::{
    AdminResponse, ChangePeerRequest, RegionDebugRequest, RegionDebugResponse, SplitRegionRequest,
    TransferLeaderRequest,
};
use net::proto::raft_cmdpb;
use net::Method;

use super::submit::split_err;
use super::StoreService;
use crate::cmd::{AdminCmd, CmdError, CmdResponse};
use crate::msg::Event;
use crate::region_error;

/// The response of an admin command's result.
fn admin_response(r: Result<CmdResponse, CmdError>) -> AdminResponse {
    match r {
        Ok(r) => {
            let a = r.admin.unwrap_or_default();
            AdminResponse { region_error: None, error: String::new(), region: a.region, left: a.left, right: a.right }
        }
        Err(e) => {
            let (region_error, error) = split_err(e);
            AdminResponse { region_error, error, ..Default::default() }
        }
    }
}

impl StoreService {
    pub(super) async fn change_peer(&self, r: ChangePeerRequest) -> AdminResponse {
        let change_type =
            raft_cmdpb::ConfChangeType::from_i32(r.change_type).unwrap_or(raft_cmdpb::ConfChangeType::AddNode);
        let cmd = AdminCmd::ChangePeer { change_type, peer: r.peer.unwrap_or_default() };
        admin_response(self.admin(Method::AdminChangePeer, &r.context, cmd).await)
    }

    pub(super) async fn transfer_leader(&self, r: TransferLeaderRequest) -> AdminResponse {
        let cmd = AdminCmd::TransferLeader { peer: r.peer.unwrap_or_default() };
        admin_response(self.admin(Method::AdminTransferLeader, &r.context, cmd).await)
    }

    pub(super) async fn split(&self, r: SplitRegionRequest) -> AdminResponse {
        let cmd = AdminCmd::Split { split_key: r.split_key };
        admin_response(self.admin(Method::AdminSplit, &r.context, cmd).await)
    }

    pub(super) async fn debug_region(&self, req: RegionDebugRequest) -> RegionDebugResponse {
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Debug { region_id: req.region_id, reply: tx });
        match rx.await.unwrap_or_else(|_| Err(region_error::server_is_busy("shard stopped", 100))) {
            Ok(d) => RegionDebugResponse {
                region_error: None,
                region: Some(d.region),
                applied_index: d.applied_index,
                truncated_index: d.truncated_index,
                last_index: d.last_index,
                commit_index: d.commit_index,
                is_leader: d.is_leader,
                shard: self.ctx.shard_id as u32,
                checksum: d.checksum,
                key_count: d.key_count,
                term: d.term,
            },
            Err(e) => RegionDebugResponse { region_error: split_err(e).0, ..Default::default() },
        }
    }
}
