//! The raw KV API: one function per request — build the command, hand it to the raft loop
//! (`submit`), shape the response.

use bytes::Bytes;
use net::proto::kvrpcpb::*;
use net::proto::raft_cmdpb::{self, CmdType, Request};
use net::Method;

use super::submit::split_err;
use super::StoreService;
use crate::cmd::ReadRequest;

fn put(key: Bytes, value: Bytes) -> Request {
    Request { cmd_type: CmdType::Put as i32, put: Some(raft_cmdpb::PutRequest { key, value }), ..Default::default() }
}

fn delete(key: Bytes) -> Request {
    Request { cmd_type: CmdType::Delete as i32, delete: Some(raft_cmdpb::DeleteRequest { key }), ..Default::default() }
}

impl StoreService {
    pub(super) async fn raw_get(&self, r: RawGetRequest) -> RawGetResponse {
        match self.read(Method::RawGet, &r.context, ReadRequest::Get { key: r.key }).await {
            Ok(mut v) => {
                let value = v.pop().and_then(|(_, v)| v);
                RawGetResponse { not_found: value.is_none(), value: value.unwrap_or_default(), ..Default::default() }
            }
            Err(e) => {
                let (region_error, error) = split_err(e);
                RawGetResponse { region_error, error, ..Default::default() }
            }
        }
    }

    pub(super) async fn raw_batch_get(&self, r: RawBatchGetRequest) -> RawBatchGetResponse {
        match self.read(Method::RawBatchGet, &r.context, ReadRequest::BatchGet { keys: r.keys }).await {
            Ok(v) => RawBatchGetResponse {
                pairs: v.into_iter().filter_map(|(key, v)| v.map(|value| KvPair { key, value })).collect(),
                ..Default::default()
            },
            Err(e) => {
                let (region_error, error) = split_err(e);
                RawBatchGetResponse { region_error, error, ..Default::default() }
            }
        }
    }

    pub(super) async fn raw_scan(&self, r: RawScanRequest) -> RawScanResponse {
        let req = ReadRequest::Scan {
            start: r.start_key,
            end: r.end_key,
            limit: r.limit,
            reverse: r.reverse,
            key_only: r.key_only,
        };
        match self.read(Method::RawScan, &r.context, req).await {
            Ok(v) => RawScanResponse {
                pairs: v.into_iter().map(|(key, v)| KvPair { key, value: v.unwrap_or_default() }).collect(),
                ..Default::default()
            },
            Err(e) => {
                let (region_error, error) = split_err(e);
                RawScanResponse { region_error, error, ..Default::default() }
            }
        }
    }

    pub(super) async fn raw_put(&self, r: RawPutRequest) -> RawPutResponse {
        let result = self.write(Method::RawPut, &r.context, vec![put(r.key, r.value)]).await;
        let (region_error, error) = result.err().map(split_err).unwrap_or_default();
        RawPutResponse { region_error, error, shard_hint: None }
    }

    pub(super) async fn raw_batch_put(&self, r: RawBatchPutRequest) -> RawBatchPutResponse {
        let reqs = r.pairs.into_iter().map(|p| put(p.key, p.value)).collect();
        let (region_error, error) =
            self.write(Method::RawBatchPut, &r.context, reqs).await.err().map(split_err).unwrap_or_default();
        RawBatchPutResponse { region_error, error, shard_hint: None }
    }

    pub(super) async fn raw_delete(&self, r: RawDeleteRequest) -> RawDeleteResponse {
        let result = self.write(Method::RawDelete, &r.context, vec![delete(r.key)]).await;
        let (region_error, error) = result.err().map(split_err).unwrap_or_default();
        RawDeleteResponse { region_error, error, shard_hint: None }
    }

    pub(super) async fn raw_batch_delete(&self, r: RawBatchDeleteRequest) -> RawBatchDeleteResponse {
        let reqs = r.keys.into_iter().map(delete).collect();
        let (region_error, error) =
            self.write(Method::RawBatchDelete, &r.context, reqs).await.err().map(split_err).unwrap_or_default();
        RawBatchDeleteResponse { region_error, error, shard_hint: None }
    }

    pub(super) async fn raw_delete_range(&self, r: RawDeleteRangeRequest) -> RawDeleteRangeResponse {
        let req = Request {
            cmd_type: CmdType::DeleteRange as i32,
            delete_range: Some(raft_cmdpb::DeleteRangeRequest { start_key: r.start_key, end_key: r.end_key }),
            ..Default::default()
        };
        let (region_error, error) =
            self.write(Method::RawDeleteRange, &r.context, vec![req]).await.err().map(split_err).unwrap_or_default();
        RawDeleteRangeResponse { region_error, error, shard_hint: None }
    }

    pub(super) async fn raw_cas(&self, r: RawCasRequest) -> RawCasResponse {
        let req = Request {
            cmd_type: CmdType::Cas as i32,
            cas: Some(raft_cmdpb::CasRequest {
                key: r.key,
                value: r.value,
                previous_not_exist: r.previous_not_exist,
                previous_value: r.previous_value,
                delete: r.delete,
            }),
            ..Default::default()
        };
        match self.write(Method::RawCas, &r.context, vec![req]).await {
            Ok(mut resp) => {
                let c = resp.responses.pop().and_then(|r| r.cas).unwrap_or_default();
                RawCasResponse {
                    succeed: c.succeed,
                    previous_not_exist: c.previous_not_exist,
                    previous_value: c.previous_value,
                    ..Default::default()
                }
            }
            Err(e) => {
                let (region_error, error) = split_err(e);
                RawCasResponse { region_error, error, ..Default::default() }
            }
        }
    }
}
