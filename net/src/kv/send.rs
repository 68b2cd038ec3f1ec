//! One attempt: pick the peer and address, send, and classify the answer.
//!
//! The leader is addressed at its shard's own address when the shard is known, else at its
//! store's main address (the store forwards and hints the shard). With the leader unknown,
//! the voters are tried in turn at their stores' main addresses. A transport failure evicts
//! the connection and the store's cached address (it may have moved). A call that times out
//! is that call's failure alone: the connection and the other calls on it go on (its late
//! reply, if any, is dropped by the connection), and a write among them keeps its answer.

use std::time::Duration;

use super::cache::{store_address, CachedRegion};
use super::client::{KvClient, Outcome};
use super::error::KvError;
use super::feedback::{self, Retry, Sent};
use super::rpc::{RegionResp, RegionRpc};
use super::stats::RetryCause;
use crate::error::NetError;
use crate::proto::errorpb::region_error::Kind;
use crate::proto::kvrpcpb::Context;

impl KvClient {
    /// Sends `req` for region `loc` once, within `timeout`.
    pub(crate) async fn attempt<R: RegionRpc>(
        &self,
        loc: &CachedRegion,
        mut req: R,
        timeout: Duration,
    ) -> Outcome<R::Resp> {
        let region_id = loc.region.id;
        let Some((peer, to_leader)) = loc.target() else {
            self.inner.regions.borrow_mut().invalidate(region_id);
            return Outcome::Retry(Retry::after(RetryCause::RouteSource, format!("region {region_id} has no peers")));
        };
        let store = match self.store(peer.store_id).await {
            Ok(s) => s,
            Err(r) => return Outcome::Retry(r),
        };
        let shard = if to_leader { loc.leader_shard } else { None };
        let Some(addr) = store_address(&store, shard) else {
            self.inner.stores.borrow_mut().invalidate(store.id);
            return Outcome::Retry(Retry::after(RetryCause::RouteSource, format!("store {} has no address", store.id)));
        };
        let sent = Sent { region_id, peer: peer.clone(), to_leader, shard };
        req.set_context(Context { region_id, region_epoch: loc.region.region_epoch.clone(), peer: Some(peer) });
        self.bump(|s| s.requests += 1);
        let result = match self.inner.pool.get(addr).await {
            Ok(c) => c.call_msg::<R, R::Resp>(R::METHOD, &req, Some(timeout)).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(resp) => self.on_response::<R>(&sent, resp),
            Err(e) if R::WRITE && !matches!(e, NetError::Connect { .. }) => {
                // The write may have reached the store: sending it again could apply it twice.
                let _ = self.on_network_error::<R::Resp>(&sent, addr, e.clone());
                Outcome::Fail(KvError::Undetermined { region_id, reason: e.to_string() })
            }
            Err(e) if e.is_retryable() => self.on_network_error(&sent, addr, e),
            Err(e) => Outcome::Fail(KvError::Net { source: e }),
        }
    }

    fn on_response<R: RegionRpc>(&self, sent: &Sent, mut resp: R::Resp) -> Outcome<R::Resp> {
        let hint = resp.take_shard_hint();
        let region_error = resp.take_region_error();
        if let Some(Kind::UndeterminedResult(u)) = region_error.as_ref().and_then(|e| e.kind.as_ref()) {
            // The store proposed the write and lost track of it: it may still apply.
            let reason = format!("the store lost track of it ({})", u.stage);
            return Outcome::Fail(KvError::Undetermined { region_id: sent.region_id, reason });
        }
        let (outcome, hinted) = {
            let mut regions = self.inner.regions.borrow_mut();
            if let Some(e) = region_error {
                let hinted = hint.as_ref().is_some_and(|h| feedback::on_shard_hint(&mut regions, sent, h));
                (Outcome::Retry(feedback::on_region_error(&mut regions, sent, e)), hinted)
            } else {
                // The peer served the request, even if it refused it: it is the leader.
                let hinted = feedback::on_success(&mut regions, sent, hint.as_ref());
                if resp.error().is_empty() {
                    (Outcome::Done(resp), hinted)
                } else {
                    let message = resp.error().to_string();
                    (Outcome::Fail(KvError::Server { region_id: sent.region_id, message }), hinted)
                }
            }
        };
        if hinted {
            self.bump(|s| s.shard_hints += 1);
        }
        outcome
    }

    fn on_network_error<T>(&self, sent: &Sent, addr: &str, e: NetError) -> Outcome<T> {
        if matches!(e, NetError::Connect { .. } | NetError::Closed(_) | NetError::Frame(_)) {
            // The transport failed: reconnect next time (the store may have moved). A timeout
            // or an error status is not a transport failure; closing the connection would fail
            // every other call on it, turning their writes into undetermined ones.
            self.inner.pool.evict(addr);
            self.inner.stores.borrow_mut().invalidate(sent.peer.store_id);
        }
        Outcome::Retry(feedback::on_network_error(&mut self.inner.regions.borrow_mut(), sent, &e))
    }
}
