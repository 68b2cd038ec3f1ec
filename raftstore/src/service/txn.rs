//! The transactional KV API (`Kv*`): reads are served by the region's leader (lease or read
//! index, as raw reads) on a snapshot, at the request's timestamp; writes — prewrite, commit,
//! rollback, cleanup, check-txn-status, resolve-lock — are replicated as one `TxnCommand`
//! raft command, processed at apply on every replica, whose answer is the encoded response.

use net::proto::errorpb::RegionError;
use net::proto::kvrpcpb::*;
use net::proto::raft_cmdpb::{self, CmdType, TxnCommandRequest};
use net::Method;
use prost::Message;

use super::submit::split_err;
use super::StoreService;
use crate::cmd::{CmdError, ReadRequest, TxnRead};
use crate::txn;

/// A transactional write request: its context is taken out before it is replicated.
pub(super) trait TxnWriteRequest: Message + Default {
    fn take_context(&mut self) -> Option<Context>;
}

/// A response that can carry a region error or a plain error.
pub(super) trait TxnFailure: Message + Default {
    fn set_failure(&mut self, region_error: Option<RegionError>, error: String);
}

macro_rules! txn_write_request {
    ($($t:ty),*) => {$(
        impl TxnWriteRequest for $t {
            fn take_context(&mut self) -> Option<Context> {
                self.context.take()
            }
        }
    )*};
}

macro_rules! txn_failure {
    ($($t:ty),*) => {$(
        impl TxnFailure for $t {
            fn set_failure(&mut self, region_error: Option<RegionError>, error: String) {
                self.region_error = region_error;
                self.error = error;
            }
        }
    )*};
}

txn_write_request!(
    KvPrewriteRequest,
    KvCommitRequest,
    KvBatchRollbackRequest,
    KvCleanupRequest,
    KvCheckTxnStatusRequest,
    KvResolveLockRequest,
    KvGcRequest
);
txn_failure!(
    KvPrewriteResponse,
    KvCommitResponse,
    KvBatchRollbackResponse,
    KvCleanupResponse,
    KvCheckTxnStatusResponse,
    KvResolveLockResponse,
    KvGcResponse,
    KvGetResponse,
    KvBatchGetResponse,
    KvScanResponse,
    KvScanLockResponse,
    KvMvccResponse
);

fn failed<R: TxnFailure>(e: CmdError) -> R {
    let mut r = R::default();
    let (region_error, error) = split_err(e);
    r.set_failure(region_error, error);
    r
}

impl StoreService {
    /// Replicates a transactional write and answers what its application answered.
    pub(super) async fn txn_write<R: TxnFailure>(&self, method: Method, mut req: impl TxnWriteRequest) -> R {
        let ctx = req.take_context();
        let cmd = raft_cmdpb::Request {
            cmd_type: CmdType::TxnCommand as i32,
            txn_command: Some(TxnCommandRequest { method: method as u32, payload: req.encode_to_vec().into() }),
            ..Default::default()
        };
        match self.write(method, &ctx, vec![cmd]).await {
            Ok(mut resp) => {
                let body = resp.responses.pop().map(|r| r.txn).unwrap_or_default();
                R::decode(body).unwrap_or_else(|e| failed(CmdError::Other(format!("bad apply response: {e}"))))
            }
            Err(e) => failed(e),
        }
    }

    pub(super) async fn kv_get(&self, r: KvGetRequest) -> KvGetResponse {
        let req = ReadRequest::Txn(TxnRead::Get { key: r.key, ts: r.version, bypass: r.resolved_locks });
        match self.read(Method::KvGet, &r.context, req).await {
            Ok(mut v) => {
                let value = v.pop().and_then(|(_, v)| v);
                KvGetResponse { not_found: value.is_none(), value: value.unwrap_or_default(), ..Default::default() }
            }
            Err(CmdError::Key(k)) => KvGetResponse { key_error: Some(txn::proto::key_error(&k)), ..Default::default() },
            Err(e) => failed(e),
        }
    }

    pub(super) async fn kv_batch_get(&self, r: KvBatchGetRequest) -> KvBatchGetResponse {
        let req = ReadRequest::Txn(TxnRead::BatchGet { keys: r.keys, ts: r.version, bypass: r.resolved_locks });
        match self.read(Method::KvBatchGet, &r.context, req).await {
            Ok(v) => KvBatchGetResponse {
                pairs: v.into_iter().filter_map(|(key, v)| v.map(|value| KvPair { key, value })).collect(),
                ..Default::default()
            },
            Err(CmdError::Key(k)) => {
                KvBatchGetResponse { key_error: Some(txn::proto::key_error(&k)), ..Default::default() }
            }
            Err(e) => failed(e),
        }
    }

    pub(super) async fn kv_scan(&self, r: KvScanRequest) -> KvScanResponse {
        let req = ReadRequest::Txn(TxnRead::Scan {
            start: r.start_key,
            end: r.end_key,
            limit: r.limit,
            ts: r.version,
            bypass: r.resolved_locks,
        });
        match self.read(Method::KvScan, &r.context, req).await {
            Ok(v) => KvScanResponse {
                pairs: v.into_iter().map(|(key, v)| KvPair { key, value: v.unwrap_or_default() }).collect(),
                ..Default::default()
            },
            Err(CmdError::Key(k)) => {
                KvScanResponse { key_error: Some(txn::proto::key_error(&k)), ..Default::default() }
            }
            Err(e) => failed(e),
        }
    }

    /// Everything stored for one key (a debugging read on the leader, like any read).
    pub(super) async fn kv_mvcc(&self, r: KvMvccRequest) -> KvMvccResponse {
        let req = ReadRequest::Txn(TxnRead::Mvcc { key: r.key });
        match self.read(Method::KvMvcc, &r.context, req).await {
            Ok(mut v) => match v.pop().and_then(|(_, v)| v) {
                Some(body) => KvMvccResponse::decode(body)
                    .unwrap_or_else(|e| failed(CmdError::Other(format!("bad MVCC answer: {e}")))),
                None => failed(CmdError::Other("no MVCC answer".into())),
            },
            Err(e) => failed(e),
        }
    }

    pub(super) async fn kv_scan_lock(&self, r: KvScanLockRequest) -> KvScanLockResponse {
        let req = ReadRequest::Txn(TxnRead::ScanLock {
            start: r.start_key,
            end: r.end_key,
            limit: r.limit,
            max_ts: r.max_version,
        });
        match self.read(Method::KvScanLock, &r.context, req).await {
            Ok(v) => {
                let mut locks = Vec::with_capacity(v.len());
                for (key, lock) in v {
                    match txn::Lock::decode(&lock.unwrap_or_default()) {
                        Ok(l) => locks.push(txn::proto::lock_info(&l.info(&key))),
                        Err(e) => return failed(CmdError::Other(e.to_string())),
                    }
                }
                KvScanLockResponse { locks, ..Default::default() }
            }
            Err(e) => failed(e),
        }
    }
}
