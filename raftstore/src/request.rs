//! A client request for a region, decoded once from its frame: the service routes it by its
//! region (to this shard's raft loop, or through the mailbox to the shard hosting it) and
//! serves it without decoding it again.

use bytes::Bytes;
use net::proto::adminpb::{ChangePeerRequest, RegionDebugRequest, SplitRegionRequest, TransferLeaderRequest};
use net::proto::kvrpcpb::*;
use net::proto::rpcpb::{Status, StatusCode};
use net::server::status;
use net::Method;
use prost::Message;

macro_rules! requests {
    ($($kind:ident($msg:ty) = $method:ident, region: |$r:ident| $region:expr;)*) => {
        /// A decoded region request, one variant per method.
        #[derive(Debug, Clone)]
        pub enum Request {
            $(
                #[doc = concat!("`", stringify!($method), "`.")]
                $kind($msg),
            )*
        }

        impl Request {
            /// Decodes the payload of `method`; an error status for a malformed payload or a
            /// method the store does not serve.
            pub fn decode(method: Method, payload: Bytes) -> Result<Request, Status> {
                let bad = |e: prost::DecodeError| status(StatusCode::BadRequest, format!("bad request: {e}"));
                match method {
                    $(Method::$method => <$msg>::decode(payload).map(Request::$kind).map_err(bad),)*
                    other => Err(status(StatusCode::Unimplemented, format!("the store does not serve {other:?}"))),
                }
            }

            /// The region it names.
            pub fn region_id(&self) -> u64 {
                match self {
                    $(Request::$kind($r) => $region,)*
                }
            }

            /// Its method.
            pub fn method(&self) -> Method {
                match self {
                    $(Request::$kind(_) => Method::$method,)*
                }
            }
        }
    };
}

fn ctx_region(c: &Option<Context>) -> u64 {
    c.as_ref().map_or(0, |c| c.region_id)
}

requests! {
    RawGet(RawGetRequest) = RawGet, region: |r| ctx_region(&r.context);
    RawBatchGet(RawBatchGetRequest) = RawBatchGet, region: |r| ctx_region(&r.context);
    RawScan(RawScanRequest) = RawScan, region: |r| ctx_region(&r.context);
    RawPut(RawPutRequest) = RawPut, region: |r| ctx_region(&r.context);
    RawBatchPut(RawBatchPutRequest) = RawBatchPut, region: |r| ctx_region(&r.context);
    RawDelete(RawDeleteRequest) = RawDelete, region: |r| ctx_region(&r.context);
    RawBatchDelete(RawBatchDeleteRequest) = RawBatchDelete, region: |r| ctx_region(&r.context);
    RawDeleteRange(RawDeleteRangeRequest) = RawDeleteRange, region: |r| ctx_region(&r.context);
    RawCas(RawCasRequest) = RawCas, region: |r| ctx_region(&r.context);
    KvGet(KvGetRequest) = KvGet, region: |r| ctx_region(&r.context);
    KvBatchGet(KvBatchGetRequest) = KvBatchGet, region: |r| ctx_region(&r.context);
    KvScan(KvScanRequest) = KvScan, region: |r| ctx_region(&r.context);
    KvScanLock(KvScanLockRequest) = KvScanLock, region: |r| ctx_region(&r.context);
    KvMvcc(KvMvccRequest) = KvMvcc, region: |r| ctx_region(&r.context);
    KvPrewrite(KvPrewriteRequest) = KvPrewrite, region: |r| ctx_region(&r.context);
    KvCommit(KvCommitRequest) = KvCommit, region: |r| ctx_region(&r.context);
    KvBatchRollback(KvBatchRollbackRequest) = KvBatchRollback, region: |r| ctx_region(&r.context);
    KvCleanup(KvCleanupRequest) = KvCleanup, region: |r| ctx_region(&r.context);
    KvCheckTxnStatus(KvCheckTxnStatusRequest) = KvCheckTxnStatus, region: |r| ctx_region(&r.context);
    KvResolveLock(KvResolveLockRequest) = KvResolveLock, region: |r| ctx_region(&r.context);
    KvGc(KvGcRequest) = KvGc, region: |r| ctx_region(&r.context);
    ChangePeer(ChangePeerRequest) = AdminChangePeer, region: |r| ctx_region(&r.context);
    TransferLeader(TransferLeaderRequest) = AdminTransferLeader, region: |r| ctx_region(&r.context);
    Split(SplitRegionRequest) = AdminSplit, region: |r| ctx_region(&r.context);
    DebugRegion(RegionDebugRequest) = DebugRegion, region: |r| r.region_id;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_and_names_the_region() {
        let get = RawGetRequest { context: Some(Context { region_id: 7, ..Default::default() }), key: "k".into() };
        let r = Request::decode(Method::RawGet, get.encode_to_vec().into()).unwrap();
        assert_eq!((r.region_id(), r.method()), (7, Method::RawGet));
        let dbg = RegionDebugRequest { region_id: 9 };
        assert_eq!(Request::decode(Method::DebugRegion, dbg.encode_to_vec().into()).unwrap().region_id(), 9);
        let bad = Request::decode(Method::RawPut, Bytes::from_static(&[0xff, 0xff])).unwrap_err();
        assert_eq!(bad.code, StatusCode::BadRequest as i32);
        let other = Request::decode(Method::PdTso, Bytes::new()).unwrap_err();
        assert_eq!(other.code, StatusCode::Unimplemented as i32);
    }
}
