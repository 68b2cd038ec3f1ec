//! The request/response pairs the client sends to a region's leader, behind two small
//! traits so that one retry loop serves every method.

use prost::Message;

use crate::proto::adminpb::{AdminResponse, ChangePeerRequest, SplitRegionRequest, TransferLeaderRequest};
use crate::proto::errorpb::{RegionError, WrongShard};
use crate::proto::kvrpcpb::*;
use crate::proto::rpcpb::Method;

/// A request addressed to a region.
pub(crate) trait RegionRpc: Message + Default + Clone + 'static {
    /// Its response.
    type Resp: RegionResp;
    /// The method it is sent as.
    const METHOD: Method;
    /// Whether it changes data: such a request is never sent twice after its fate became
    /// unknown (see [`crate::kv::KvError::Undetermined`]).
    const WRITE: bool;
    /// Sets the region, epoch and peer the request is meant for.
    fn set_context(&mut self, ctx: Context);
}

/// A response from a region's leader.
pub(crate) trait RegionResp: Message + Default + 'static {
    /// The region error, taken out.
    fn take_region_error(&mut self) -> Option<RegionError>;
    /// The non-retryable error; empty if none.
    fn error(&self) -> &str;
    /// The shard hint, taken out (the request was forwarded inside the store).
    fn take_shard_hint(&mut self) -> Option<WrongShard>;
}

macro_rules! region_rpc {
    ($req:ty => $resp:ty, $method:expr, write: $write:expr) => {
        impl RegionRpc for $req {
            type Resp = $resp;
            const METHOD: Method = $method;
            const WRITE: bool = $write;
            fn set_context(&mut self, ctx: Context) {
                self.context = Some(ctx);
            }
        }
    };
}

macro_rules! region_resp {
    ($resp:ty, hint: $hint:tt) => {
        impl RegionResp for $resp {
            fn take_region_error(&mut self) -> Option<RegionError> {
                self.region_error.take()
            }
            fn error(&self) -> &str {
                &self.error
            }
            fn take_shard_hint(&mut self) -> Option<WrongShard> {
                region_resp!(@hint self, $hint)
            }
        }
    };
    (@hint $self:ident, yes) => {
        $self.shard_hint.take()
    };
    (@hint $self:ident, no) => {
        None
    };
}

region_rpc!(RawGetRequest => RawGetResponse, Method::RawGet, write: false);
region_rpc!(RawBatchGetRequest => RawBatchGetResponse, Method::RawBatchGet, write: false);
region_rpc!(RawPutRequest => RawPutResponse, Method::RawPut, write: true);
region_rpc!(RawBatchPutRequest => RawBatchPutResponse, Method::RawBatchPut, write: true);
region_rpc!(RawDeleteRequest => RawDeleteResponse, Method::RawDelete, write: true);
region_rpc!(RawBatchDeleteRequest => RawBatchDeleteResponse, Method::RawBatchDelete, write: true);
region_rpc!(RawDeleteRangeRequest => RawDeleteRangeResponse, Method::RawDeleteRange, write: true);
region_rpc!(RawScanRequest => RawScanResponse, Method::RawScan, write: false);
region_rpc!(RawCasRequest => RawCasResponse, Method::RawCas, write: true);
// Admin commands carry the region epoch they were meant for: a second application of a
// membership change or split finds the epoch moved and is refused, so they may be retried.
region_rpc!(ChangePeerRequest => AdminResponse, Method::AdminChangePeer, write: false);
region_rpc!(TransferLeaderRequest => AdminResponse, Method::AdminTransferLeader, write: false);
region_rpc!(SplitRegionRequest => AdminResponse, Method::AdminSplit, write: false);

region_resp!(RawGetResponse, hint: yes);
region_resp!(RawBatchGetResponse, hint: yes);
region_resp!(RawPutResponse, hint: yes);
region_resp!(RawBatchPutResponse, hint: yes);
region_resp!(RawDeleteResponse, hint: yes);
region_resp!(RawBatchDeleteResponse, hint: yes);
region_resp!(RawDeleteRangeResponse, hint: yes);
region_resp!(RawScanResponse, hint: yes);
region_resp!(RawCasResponse, hint: yes);
region_resp!(AdminResponse, hint: no);

// Transactional commands are idempotent (a retried prewrite finds its own lock, a retried
// commit its own record), so they are retried after an undetermined outcome.
region_rpc!(KvGetRequest => KvGetResponse, Method::KvGet, write: false);
region_rpc!(KvBatchGetRequest => KvBatchGetResponse, Method::KvBatchGet, write: false);
region_rpc!(KvScanRequest => KvScanResponse, Method::KvScan, write: false);
region_rpc!(KvScanLockRequest => KvScanLockResponse, Method::KvScanLock, write: false);
region_rpc!(KvMvccRequest => KvMvccResponse, Method::KvMvcc, write: false);
region_rpc!(KvPrewriteRequest => KvPrewriteResponse, Method::KvPrewrite, write: false);
region_rpc!(KvCommitRequest => KvCommitResponse, Method::KvCommit, write: false);
region_rpc!(KvBatchRollbackRequest => KvBatchRollbackResponse, Method::KvBatchRollback, write: false);
region_rpc!(KvCleanupRequest => KvCleanupResponse, Method::KvCleanup, write: false);
region_rpc!(KvCheckTxnStatusRequest => KvCheckTxnStatusResponse, Method::KvCheckTxnStatus, write: false);
region_rpc!(KvResolveLockRequest => KvResolveLockResponse, Method::KvResolveLock, write: false);
region_rpc!(KvGcRequest => KvGcResponse, Method::KvGc, write: false);

region_resp!(KvGetResponse, hint: yes);
region_resp!(KvBatchGetResponse, hint: yes);
region_resp!(KvScanResponse, hint: yes);
region_resp!(KvScanLockResponse, hint: yes);
region_resp!(KvMvccResponse, hint: yes);
region_resp!(KvPrewriteResponse, hint: yes);
region_resp!(KvCommitResponse, hint: yes);
region_resp!(KvBatchRollbackResponse, hint: yes);
region_resp!(KvCleanupResponse, hint: yes);
region_resp!(KvCheckTxnStatusResponse, hint: yes);
region_resp!(KvResolveLockResponse, hint: yes);
region_resp!(KvGcResponse, hint: yes);
