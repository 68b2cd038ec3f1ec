//! The store's network service, run on every shard: the raw KV API, operator commands and
//! debug reads for regions, raft messages and snapshot chunks from other stores.
//!
//! A request is decoded once ([`Request`]) and routed by its region: served here, or handed
//! through the mailbox to the shard of this store hosting the region (`forward`), whose
//! answer carries a `shard_hint` so the client addresses that shard next. Serving is one
//! function per request kind (`kv`, `admin`); handing a request to the raft loop and waiting,
//! within the request bound, is `submit`.

mod admin;
mod forward;
mod kv;
mod raft;
mod submit;
mod txn;

use std::rc::Rc;

use bytes::Bytes;
use net::proto::errorpb::WrongShard;
use net::proto::kvrpcpb::*;
use net::server::{HandlerResult, LocalBoxFuture, Reply, Service};
use net::Method;
use prost::Message;

use crate::ctx::ShardCtx;
use crate::request::Request;
use crate::transport::SnapshotAssembler;

/// The service of one shard.
pub struct StoreService {
    ctx: Rc<ShardCtx>,
    snapshots: SnapshotAssembler,
}

impl StoreService {
    /// The service of `ctx`'s shard.
    pub fn new(ctx: Rc<ShardCtx>) -> Rc<Self> {
        Rc::new(StoreService { ctx, snapshots: SnapshotAssembler::default() })
    }

    /// Serves a region request here or forwards it to the shard hosting the region.
    async fn route(&self, req: Request) -> HandlerResult {
        match self.ctx.shard_of(req.region_id()) {
            Some(s) if s != self.ctx.shard_id => self.forward(s, req).await,
            _ => self.serve(req, None).await,
        }
    }

    /// Serves a region request on this shard (the region is here, or unknown to the store);
    /// `hint` names this shard when another shard forwarded the request.
    pub async fn serve(&self, req: Request, hint: Option<WrongShard>) -> HandlerResult {
        match req {
            Request::RawGet(r) => hinted(self.raw_get(r).await, hint),
            Request::RawBatchGet(r) => hinted(self.raw_batch_get(r).await, hint),
            Request::RawScan(r) => hinted(self.raw_scan(r).await, hint),
            Request::RawPut(r) => hinted(self.raw_put(r).await, hint),
            Request::RawBatchPut(r) => hinted(self.raw_batch_put(r).await, hint),
            Request::RawDelete(r) => hinted(self.raw_delete(r).await, hint),
            Request::RawBatchDelete(r) => hinted(self.raw_batch_delete(r).await, hint),
            Request::RawDeleteRange(r) => hinted(self.raw_delete_range(r).await, hint),
            Request::RawCas(r) => hinted(self.raw_cas(r).await, hint),
            Request::KvGet(r) => hinted(self.kv_get(r).await, hint),
            Request::KvBatchGet(r) => hinted(self.kv_batch_get(r).await, hint),
            Request::KvScan(r) => hinted(self.kv_scan(r).await, hint),
            Request::KvScanLock(r) => hinted(self.kv_scan_lock(r).await, hint),
            Request::KvMvcc(r) => hinted(self.kv_mvcc(r).await, hint),
            Request::KvPrewrite(r) => hinted(self.txn_write::<KvPrewriteResponse>(Method::KvPrewrite, r).await, hint),
            Request::KvCommit(r) => hinted(self.txn_write::<KvCommitResponse>(Method::KvCommit, r).await, hint),
            Request::KvBatchRollback(r) => {
                hinted(self.txn_write::<KvBatchRollbackResponse>(Method::KvBatchRollback, r).await, hint)
            }
            Request::KvCleanup(r) => hinted(self.txn_write::<KvCleanupResponse>(Method::KvCleanup, r).await, hint),
            Request::KvCheckTxnStatus(r) => {
                hinted(self.txn_write::<KvCheckTxnStatusResponse>(Method::KvCheckTxnStatus, r).await, hint)
            }
            Request::KvResolveLock(r) => {
                hinted(self.txn_write::<KvResolveLockResponse>(Method::KvResolveLock, r).await, hint)
            }
            Request::KvGc(r) => hinted(self.txn_write::<KvGcResponse>(Method::KvGc, r).await, hint),
            Request::ChangePeer(r) => encoded(self.change_peer(r).await),
            Request::TransferLeader(r) => encoded(self.transfer_leader(r).await),
            Request::Split(r) => encoded(self.split(r).await),
            Request::DebugRegion(r) => encoded(self.debug_region(r).await),
        }
    }
}

/// A response that can name the shard hosting its region.
trait ShardHint: Message {
    fn set_shard_hint(&mut self, hint: WrongShard);
}

macro_rules! shard_hint {
    ($($t:ty),*) => {$(
        impl ShardHint for $t {
            fn set_shard_hint(&mut self, hint: WrongShard) {
                self.shard_hint = Some(hint);
            }
        }
    )*};
}

shard_hint!(
    RawGetResponse,
    RawBatchGetResponse,
    RawScanResponse,
    RawPutResponse,
    RawBatchPutResponse,
    RawDeleteResponse,
    RawBatchDeleteResponse,
    RawDeleteRangeResponse,
    RawCasResponse,
    KvGetResponse,
    KvBatchGetResponse,
    KvScanResponse,
    KvScanLockResponse,
    KvMvccResponse,
    KvPrewriteResponse,
    KvCommitResponse,
    KvBatchRollbackResponse,
    KvCleanupResponse,
    KvCheckTxnStatusResponse,
    KvResolveLockResponse,
    KvGcResponse
);

fn hinted<M: ShardHint + 'static>(mut m: M, hint: Option<WrongShard>) -> HandlerResult {
    if let Some(h) = hint {
        m.set_shard_hint(h);
    }
    encoded(m)
}

fn encoded<M: Message + 'static>(m: M) -> HandlerResult {
    Ok(Reply::message(m))
}

/// The service as the network layer sees it.
pub struct ShardService(pub Rc<StoreService>);

impl Service for ShardService {
    fn call(&self, method: Method, payload: Bytes) -> LocalBoxFuture<HandlerResult> {
        let svc = self.0.clone();
        Box::pin(async move {
            match method {
                Method::RaftBatch => svc.on_raft_batch(payload),
                Method::SnapshotChunk => svc.on_snapshot_chunk(payload),
                _ => svc.route(Request::decode(method, payload)?).await,
            }
        })
    }
}
