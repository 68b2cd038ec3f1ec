//! The request message of every RPC method, as the servers decode it (raftstore's
//! `ShardService`, PD's `PdService`), and a prost round-trip check for each.

use std::fmt::Debug;

use net::proto::rpcpb::Method;
use net::proto::{adminpb, kvrpcpb, pdpb, raft_serverpb};
use prost::Message;

/// Decodes `payload` as a request of one method; if it decodes, checks the round trip.
pub type Check = fn(&[u8]) -> Result<(), prost::DecodeError>;

/// Decodes `payload` as `T`. A message that decodes must re-encode to `encoded_len` bytes that
/// decode to an equal message, and encoding that again must give the same length (bytes may
/// differ: map fields are encoded in hash order).
pub fn round_trip<T: Message + Default + PartialEq + Debug>(payload: &[u8]) -> Result<(), prost::DecodeError> {
    let msg = T::decode(payload)?;
    let bytes = msg.encode_to_vec();
    assert_eq!(bytes.len(), msg.encoded_len(), "encoded_len of {msg:?}");
    let again = match T::decode(&bytes[..]) {
        Ok(m) => m,
        Err(e) => panic!("{msg:?} re-encoded to bytes that do not decode: {e}"),
    };
    assert_eq!(again, msg, "round trip changed the message");
    assert_eq!(again.encoded_len(), bytes.len());
    Ok(())
}

/// The request type of `method`, as a [`Check`]; `None` for `Unknown`. The match has no
/// wildcard, so a method added to `rpcpb.proto` does not compile until it is listed here.
pub fn check_for(method: Method) -> Option<Check> {
    use Method as M;
    Some(match method {
        M::Unknown => return None,
        M::RawGet => round_trip::<kvrpcpb::RawGetRequest>,
        M::RawBatchGet => round_trip::<kvrpcpb::RawBatchGetRequest>,
        M::RawPut => round_trip::<kvrpcpb::RawPutRequest>,
        M::RawBatchPut => round_trip::<kvrpcpb::RawBatchPutRequest>,
        M::RawDelete => round_trip::<kvrpcpb::RawDeleteRequest>,
        M::RawBatchDelete => round_trip::<kvrpcpb::RawBatchDeleteRequest>,
        M::RawDeleteRange => round_trip::<kvrpcpb::RawDeleteRangeRequest>,
        M::RawScan => round_trip::<kvrpcpb::RawScanRequest>,
        M::RawCas => round_trip::<kvrpcpb::RawCasRequest>,
        M::KvGet => round_trip::<kvrpcpb::KvGetRequest>,
        M::KvBatchGet => round_trip::<kvrpcpb::KvBatchGetRequest>,
        M::KvScan => round_trip::<kvrpcpb::KvScanRequest>,
        M::KvPrewrite => round_trip::<kvrpcpb::KvPrewriteRequest>,
        M::KvCommit => round_trip::<kvrpcpb::KvCommitRequest>,
        M::KvBatchRollback => round_trip::<kvrpcpb::KvBatchRollbackRequest>,
        M::KvCleanup => round_trip::<kvrpcpb::KvCleanupRequest>,
        M::KvCheckTxnStatus => round_trip::<kvrpcpb::KvCheckTxnStatusRequest>,
        M::KvResolveLock => round_trip::<kvrpcpb::KvResolveLockRequest>,
        M::KvScanLock => round_trip::<kvrpcpb::KvScanLockRequest>,
        M::KvGc => round_trip::<kvrpcpb::KvGcRequest>,
        M::KvMvcc => round_trip::<kvrpcpb::KvMvccRequest>,
        M::PdIsBootstrapped => round_trip::<pdpb::IsBootstrappedRequest>,
        M::PdBootstrap => round_trip::<pdpb::BootstrapRequest>,
        M::PdPutStore => round_trip::<pdpb::PutStoreRequest>,
        M::PdGetStore => round_trip::<pdpb::GetStoreRequest>,
        M::PdGetAllStores => round_trip::<pdpb::GetAllStoresRequest>,
        M::PdGetRegion => round_trip::<pdpb::GetRegionRequest>,
        M::PdGetRegionById => round_trip::<pdpb::GetRegionByIdRequest>,
        M::PdScanRegions => round_trip::<pdpb::ScanRegionsRequest>,
        M::PdAllocId => round_trip::<pdpb::AllocIdRequest>,
        M::PdTso => round_trip::<pdpb::TsoRequest>,
        M::PdAskSplit => round_trip::<pdpb::AskSplitRequest>,
        M::PdReportSplit => round_trip::<pdpb::ReportSplitRequest>,
        M::PdStoreHeartbeat => round_trip::<pdpb::StoreHeartbeatRequest>,
        M::PdRegionHeartbeat => round_trip::<pdpb::RegionHeartbeatRequest>,
        M::PdGetClusterInfo => round_trip::<pdpb::GetClusterInfoRequest>,
        M::PdGetOperators => round_trip::<pdpb::GetOperatorsRequest>,
        M::PdAddOperator => round_trip::<pdpb::AddOperatorRequest>,
        M::PdCancelOperator => round_trip::<pdpb::CancelOperatorRequest>,
        M::PdListSchedulers => round_trip::<pdpb::ListSchedulersRequest>,
        M::PdPauseScheduler => round_trip::<pdpb::PauseSchedulerRequest>,
        M::PdScheduleConfig => round_trip::<pdpb::ScheduleConfigRequest>,
        M::PdUpdateGcSafePoint => round_trip::<pdpb::UpdateGcSafePointRequest>,
        M::PdGetGcSafePoint => round_trip::<pdpb::GetGcSafePointRequest>,
        M::RaftBatch => round_trip::<raft_serverpb::RaftMessageBatch>,
        M::SnapshotChunk => round_trip::<raft_serverpb::SnapshotChunk>,
        M::AdminChangePeer => round_trip::<adminpb::ChangePeerRequest>,
        M::AdminTransferLeader => round_trip::<adminpb::TransferLeaderRequest>,
        M::AdminSplit => round_trip::<adminpb::SplitRegionRequest>,
        M::DebugRegion => round_trip::<adminpb::RegionDebugRequest>,
    })
}

/// Every method of the table with its request check (method numbers are below 1000).
pub fn table() -> Vec<(Method, Check)> {
    (0..1000).filter_map(Method::from_i32).filter_map(|m| check_for(m).map(|c| (m, c))).collect()
}
