//! Operator requests to a region's leader (change peer, transfer leader, split) and debug
//! reads from a given store.
//!
//! Admin requests are routed and retried like KV requests. They are not idempotent: if a
//! response is lost and the request retried, the retry may fail with the store's error
//! ("peer already exists", "key is the region's start") although the first one took effect.
//! Callers that care check the region afterwards.

use bytes::Bytes;

use super::client::KvClient;
use super::error::{KvError, Result};
use super::feedback::route_on_store;
use super::locate::Locate;
use crate::proto::adminpb::{
    ChangePeerRequest, RegionDebugRequest, RegionDebugResponse, SplitRegionRequest, TransferLeaderRequest,
};
use crate::proto::metapb::{Peer, Region};
use crate::proto::raft_cmdpb::ConfChangeType;
use crate::proto::rpcpb::Method;

fn missing(what: &str) -> KvError {
    KvError::Malformed { what: format!("admin response without {what}") }
}

impl KvClient {
    /// Adds or removes `peer` of region `region_id` (for an add, the caller allocates the
    /// peer id). Returns the region after the change.
    pub async fn change_peer(&self, region_id: u64, change: ConfChangeType, peer: Peer) -> Result<Region> {
        if peer.store_id == 0 || (change != ConfChangeType::RemoveNode && peer.id == 0) {
            return Err(KvError::InvalidArgument { reason: format!("peer needs an id and a store: {peer:?}") });
        }
        let req = ChangePeerRequest { context: None, change_type: change as i32, peer: Some(peer) };
        let (loc, resp) = self.run(&mut self.backoffer(), Locate::Id(region_id), |_| req.clone()).await?;
        let region = resp.region.ok_or_else(|| missing("the region"))?;
        let leader_store = loc.leader.as_ref().map(|l| l.store_id);
        self.inner.regions.borrow_mut().insert(route_on_store(region.clone(), leader_store));
        Ok(region)
    }

    /// Asks region `region_id`'s leader to hand leadership to `to`. Returns once the leader
    /// accepted the request; the transfer itself completes asynchronously (or not).
    pub async fn transfer_leader(&self, region_id: u64, to: Peer) -> Result<()> {
        let req = TransferLeaderRequest { context: None, peer: Some(to) };
        self.run(&mut self.backoffer(), Locate::Id(region_id), |_| req.clone()).await.map(|_| ())
    }

    /// Splits the region containing `key` at `key`. Returns the regions left and right of
    /// it.
    pub async fn split(&self, key: impl Into<Bytes>) -> Result<(Region, Region)> {
        let key = key.into();
        if key.is_empty() {
            return Err(KvError::InvalidArgument { reason: "cannot split at the empty key".into() });
        }
        let req = SplitRegionRequest { context: None, split_key: key.clone() };
        let (loc, resp) = self.run(&mut self.backoffer(), Locate::Key(&key), |_| req.clone()).await?;
        let left = resp.left.ok_or_else(|| missing("the left region"))?;
        let right = resp.right.ok_or_else(|| missing("the right region"))?;
        let leader_store = loc.leader.as_ref().map(|l| l.store_id);
        let mut regions = self.inner.regions.borrow_mut();
        regions.insert(route_on_store(left.clone(), leader_store));
        regions.insert(route_on_store(right.clone(), leader_store));
        Ok((left, right))
    }

    /// Region `region_id` as the store at `store_address` sees it (any replica). One call,
    /// no routing, no retries; a region error is part of the answer.
    pub async fn region_debug(&self, store_address: &str, region_id: u64) -> Result<RegionDebugResponse> {
        let client = self.inner.pool.get(store_address).await?;
        let req = RegionDebugRequest { region_id };
        let timeout = self.inner.config.conn.call_timeout;
        client.call_msg(Method::DebugRegion, &req, Some(timeout)).await.map_err(|e| {
            if e.is_retryable() {
                self.inner.pool.evict(store_address);
            }
            KvError::from(e)
        })
    }
}
