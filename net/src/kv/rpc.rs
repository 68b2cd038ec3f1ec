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
    ($req:ty => $resp:ty, $method:expr) => {
        impl RegionRpc for $req {
            type Resp = $resp;
            const METHOD: Method = $method;
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

region_rpc!(RawGetRequest => RawGetResponse, Method::RawGet);
region_rpc!(RawBatchGetRequest => RawBatchGetResponse, Method::RawBatchGet);
region_rpc!(RawPutRequest => RawPutResponse, Method::RawPut);
region_rpc!(RawBatchPutRequest => RawBatchPutResponse, Method::RawBatchPut);
region_rpc!(RawDeleteRequest => RawDeleteResponse, Method::RawDelete);
region_rpc!(RawBatchDeleteRequest => RawBatchDeleteResponse, Method::RawBatchDelete);
region_rpc!(RawDeleteRangeRequest => RawDeleteRangeResponse, Method::RawDeleteRange);
region_rpc!(RawScanRequest => RawScanResponse, Method::RawScan);
region_rpc!(RawCasRequest => RawCasResponse, Method::RawCas);
region_rpc!(ChangePeerRequest => AdminResponse, Method::AdminChangePeer);
region_rpc!(TransferLeaderRequest => AdminResponse, Method::AdminTransferLeader);
region_rpc!(SplitRegionRequest => AdminResponse, Method::AdminSplit);

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
