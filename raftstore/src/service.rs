//! The store's network service, run on every shard: the raw KV API, raft messages from
//! other stores, snapshot chunks, operator commands and debug reads.
//!
//! A request for a region on another shard of this store is forwarded inside the store
//! (mailbox) and its response carries a `shard_hint`, so the client addresses that shard next.

use std::rc::Rc;

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::adminpb::{self, AdminResponse, RegionDebugRequest, RegionDebugResponse};
use net::proto::errorpb::{RegionError, WrongShard};
use net::proto::kvrpcpb::*;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::{self, CmdType, Request};
use net::proto::raft_serverpb::{Done, RaftMessageBatch, SnapshotChunk};
use net::proto::rpcpb::StatusCode;
use net::server::{status, typed, HandlerResult, LocalBoxFuture, Service};
use net::Method;
use prost::Message;

use std::sync::atomic::Ordering;
use std::time::Instant;

use net::client::with_timeout;

use crate::region_error;
use crate::router;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::{AdminCmd, CmdError, CmdResponse, Event, ReadRequest, ShardMsg};
use crate::tracker::Ticket;
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
}

fn region_of(c: &Option<Context>) -> (u64, RegionEpoch) {
    let c = c.clone().unwrap_or_default();
    (c.region_id, c.region_epoch.unwrap_or_default())
}

/// Splits a command error into the response's `region_error` and `error` fields.
fn split_err(e: CmdError) -> (Option<RegionError>, String) {
    match e {
        CmdError::Region(r) => (Some(*r), String::new()),
        CmdError::Other(s) => (None, s),
    }
}

fn put(key: Bytes, value: Bytes) -> Request {
    Request { cmd_type: CmdType::Put as i32, put: Some(raft_cmdpb::PutRequest { key, value }), ..Default::default() }
}

fn delete(key: Bytes) -> Request {
    Request { cmd_type: CmdType::Delete as i32, delete: Some(raft_cmdpb::DeleteRequest { key }), ..Default::default() }
}

impl StoreService {
    /// Admits a request to the shard's tracker: its stage is followed from here.
    fn admit(&self, region_id: u64, method: Method) -> Ticket {
        self.ctx.requests.borrow_mut().admit(region_id, method, Instant::now())
    }

    /// Waits for the raft loop's answer to a tracked request, at most `request.timeout-ms`.
    /// Past that the request is answered by the bound: an explicit `RequestTimeout` — or, for
    /// a write that reached the raft log, `UndeterminedResult` (it may still apply) — and the
    /// shard drops it (a queued one is never proposed; a late answer goes nowhere).
    async fn answer<T>(
        &self,
        ticket: Ticket,
        write: bool,
        rx: oneshot::Receiver<Result<T, CmdError>>,
    ) -> Result<T, CmdError> {
        let bound = self.ctx.cfg.request_timeout();
        let result = with_timeout(bound, rx).await;
        let tracked = self.ctx.requests.borrow_mut().finish(ticket);
        match result {
            Some(Ok(r)) => r,
            // The reply was dropped unanswered (the shard stopped): a proposed write may
            // still apply elsewhere.
            Some(Err(_)) if write && tracked.as_ref().is_some_and(|t| t.stage.proposed()) => {
                Err(region_error::undetermined("the shard dropped the request"))
            }
            Some(Err(_)) => Err(region_error::server_is_busy("shard stopped", 100)),
            None => {
                self.ctx.requests.borrow_mut().count_timeout();
                self.ctx.shared.timed_out_requests.fetch_add(1, Ordering::Relaxed);
                let Some(t) = tracked else {
                    // Never happens (the ticket is live until here); if it did, a write's fate
                    // would be unknown.
                    return Err(if write {
                        region_error::undetermined("untracked")
                    } else {
                        region_error::request_timeout("untracked", bound)
                    });
                };
                let stage = t.stage;
                let bound_ms = bound.as_millis() as u64;
                tracing::warn!(region_id = t.region_id, kind = ?t.method, %stage, bound_ms, "request timed out");
                if write && stage.proposed() {
                    Err(region_error::undetermined(&stage.to_string()))
                } else {
                    Err(region_error::request_timeout(&stage.to_string(), bound))
                }
            }
        }
    }

    async fn write(
        &self,
        method: Method,
        ctx: &Option<Context>,
        requests: Vec<Request>,
    ) -> Result<CmdResponse, CmdError> {
        let (region_id, epoch) = region_of(ctx);
        let ticket = self.admit(region_id, method);
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Write { region_id, epoch, requests, reply: tx, ticket });
        self.answer(ticket, true, rx).await
    }

    async fn read(&self, method: Method, ctx: &Option<Context>, req: ReadRequest) -> crate::shard::msg::ReadResult {
        let (region_id, epoch) = region_of(ctx);
        let ticket = self.admit(region_id, method);
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Read { region_id, epoch, req, reply: tx, ticket });
        self.answer(ticket, false, rx).await
    }

    async fn admin(&self, method: Method, ctx: &Option<Context>, cmd: AdminCmd) -> AdminResponse {
        let (region_id, epoch) = region_of(ctx);
        let ticket = self.admit(region_id, method);
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Admin { region_id, epoch, cmd, reply: tx, ticket });
        match self.answer(ticket, false, rx).await {
            Ok(r) => {
                let a = r.admin.unwrap_or_default();
                AdminResponse {
                    region_error: None,
                    error: String::new(),
                    region: a.region,
                    left: a.left,
                    right: a.right,
                }
            }
            Err(e) => {
                let (region_error, error) = split_err(e);
                AdminResponse { region_error, error, ..Default::default() }
            }
        }
    }

    async fn debug(&self, req: RegionDebugRequest) -> RegionDebugResponse {
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Debug { region_id: req.region_id, reply: tx });
        match rx.await.unwrap_or_else(|_| Err(crate::region_error::server_is_busy("shard stopped", 100))) {
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

    /// Serves a KV or admin request here (the region is on this shard or unknown to it).
    pub async fn serve_local(&self, method: Method, payload: Bytes) -> HandlerResult {
        match method {
            Method::RawGet => {
                typed(payload, |r: RawGetRequest| async move {
                    match self.read(method, &r.context, ReadRequest::Get { key: r.key }).await {
                        Ok(mut v) => {
                            let value = v.pop().and_then(|(_, v)| v);
                            RawGetResponse {
                                not_found: value.is_none(),
                                value: value.unwrap_or_default(),
                                ..Default::default()
                            }
                        }
                        Err(e) => {
                            let (region_error, error) = split_err(e);
                            RawGetResponse { region_error, error, ..Default::default() }
                        }
                    }
                })
                .await
            }
            Method::RawBatchGet => {
                typed(payload, |r: RawBatchGetRequest| async move {
                    match self.read(method, &r.context, ReadRequest::BatchGet { keys: r.keys }).await {
                        Ok(v) => RawBatchGetResponse {
                            pairs: v.into_iter().filter_map(|(key, v)| v.map(|value| KvPair { key, value })).collect(),
                            ..Default::default()
                        },
                        Err(e) => {
                            let (region_error, error) = split_err(e);
                            RawBatchGetResponse { region_error, error, ..Default::default() }
                        }
                    }
                })
                .await
            }
            Method::RawScan => {
                typed(payload, |r: RawScanRequest| async move {
                    let req = ReadRequest::Scan {
                        start: r.start_key,
                        end: r.end_key,
                        limit: r.limit,
                        reverse: r.reverse,
                        key_only: r.key_only,
                    };
                    match self.read(method, &r.context, req).await {
                        Ok(v) => RawScanResponse {
                            pairs: v.into_iter().map(|(key, v)| KvPair { key, value: v.unwrap_or_default() }).collect(),
                            ..Default::default()
                        },
                        Err(e) => {
                            let (region_error, error) = split_err(e);
                            RawScanResponse { region_error, error, ..Default::default() }
                        }
                    }
                })
                .await
            }
            Method::RawPut => {
                typed(payload, |r: RawPutRequest| async move {
                    let (region_error, error) = self
                        .write(method, &r.context, vec![put(r.key, r.value)])
                        .await
                        .err()
                        .map(split_err)
                        .unwrap_or_default();
                    RawPutResponse { region_error, error, shard_hint: None }
                })
                .await
            }
            Method::RawBatchPut => {
                typed(payload, |r: RawBatchPutRequest| async move {
                    let reqs = r.pairs.into_iter().map(|p| put(p.key, p.value)).collect();
                    let (region_error, error) =
                        self.write(method, &r.context, reqs).await.err().map(split_err).unwrap_or_default();
                    RawBatchPutResponse { region_error, error, shard_hint: None }
                })
                .await
            }
            Method::RawDelete => {
                typed(payload, |r: RawDeleteRequest| async move {
                    let (region_error, error) = self
                        .write(method, &r.context, vec![delete(r.key)])
                        .await
                        .err()
                        .map(split_err)
                        .unwrap_or_default();
                    RawDeleteResponse { region_error, error, shard_hint: None }
                })
                .await
            }
            Method::RawBatchDelete => {
                typed(payload, |r: RawBatchDeleteRequest| async move {
                    let reqs = r.keys.into_iter().map(delete).collect();
                    let (region_error, error) =
                        self.write(method, &r.context, reqs).await.err().map(split_err).unwrap_or_default();
                    RawBatchDeleteResponse { region_error, error, shard_hint: None }
                })
                .await
            }
            Method::RawDeleteRange => {
                typed(payload, |r: RawDeleteRangeRequest| async move {
                    let req = Request {
                        cmd_type: CmdType::DeleteRange as i32,
                        delete_range: Some(raft_cmdpb::DeleteRangeRequest {
                            start_key: r.start_key,
                            end_key: r.end_key,
                        }),
                        ..Default::default()
                    };
                    let (region_error, error) =
                        self.write(method, &r.context, vec![req]).await.err().map(split_err).unwrap_or_default();
                    RawDeleteRangeResponse { region_error, error, shard_hint: None }
                })
                .await
            }
            Method::RawCas => {
                typed(payload, |r: RawCasRequest| async move {
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
                    match self.write(method, &r.context, vec![req]).await {
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
                })
                .await
            }
            Method::AdminChangePeer => {
                typed(payload, |r: adminpb::ChangePeerRequest| async move {
                    let change_type = raft_cmdpb::ConfChangeType::from_i32(r.change_type)
                        .unwrap_or(raft_cmdpb::ConfChangeType::AddNode);
                    self.admin(
                        method,
                        &r.context,
                        AdminCmd::ChangePeer { change_type, peer: r.peer.unwrap_or_default() },
                    )
                    .await
                })
                .await
            }
            Method::AdminTransferLeader => {
                typed(payload, |r: adminpb::TransferLeaderRequest| async move {
                    self.admin(method, &r.context, AdminCmd::TransferLeader { peer: r.peer.unwrap_or_default() }).await
                })
                .await
            }
            Method::AdminSplit => {
                typed(payload, |r: adminpb::SplitRegionRequest| async move {
                    self.admin(method, &r.context, AdminCmd::Split { split_key: r.split_key }).await
                })
                .await
            }
            Method::DebugRegion => typed(payload, |r: RegionDebugRequest| async { self.debug(r).await }).await,
            other => Err(status(StatusCode::Unimplemented, format!("the store does not serve {other:?}"))),
        }
    }

    /// The region a KV/admin request names, for routing.
    fn request_region(method: Method, payload: &Bytes) -> Option<u64> {
        fn ctx_of<M: Message + Default>(p: &Bytes, f: impl Fn(M) -> Option<Context>) -> Option<u64> {
            M::decode(p.clone()).ok().and_then(f).map(|c| c.region_id)
        }
        match method {
            Method::RawGet => ctx_of(payload, |r: RawGetRequest| r.context),
            Method::RawBatchGet => ctx_of(payload, |r: RawBatchGetRequest| r.context),
            Method::RawScan => ctx_of(payload, |r: RawScanRequest| r.context),
            Method::RawPut => ctx_of(payload, |r: RawPutRequest| r.context),
            Method::RawBatchPut => ctx_of(payload, |r: RawBatchPutRequest| r.context),
            Method::RawDelete => ctx_of(payload, |r: RawDeleteRequest| r.context),
            Method::RawBatchDelete => ctx_of(payload, |r: RawBatchDeleteRequest| r.context),
            Method::RawDeleteRange => ctx_of(payload, |r: RawDeleteRangeRequest| r.context),
            Method::RawCas => ctx_of(payload, |r: RawCasRequest| r.context),
            Method::AdminChangePeer => ctx_of(payload, |r: adminpb::ChangePeerRequest| r.context),
            Method::AdminTransferLeader => ctx_of(payload, |r: adminpb::TransferLeaderRequest| r.context),
            Method::AdminSplit => ctx_of(payload, |r: adminpb::SplitRegionRequest| r.context),
            Method::DebugRegion => RegionDebugRequest::decode(payload.clone()).ok().map(|r| r.region_id),
            _ => None,
        }
    }

    /// Forwards a request to the shard hosting its region and adds the shard hint.
    async fn forward(&self, shard: usize, region_id: u64, method: Method, payload: Bytes) -> HandlerResult {
        let (id, rx) = self.ctx.start_forward();
        let msg = ShardMsg::Forward { from: self.ctx.shard_id, id, method, payload };
        if self.ctx.outbox.send(shard, msg).await.is_err() {
            return Err(status(StatusCode::Unavailable, "shard stopped"));
        }
        // The owning shard bounds the request itself; this bound only covers a shard that
        // stopped answering altogether.
        let bound = self.ctx.cfg.request_timeout() + std::time::Duration::from_secs(1);
        let Some(reply) = with_timeout(bound, rx).await else {
            self.ctx.cancel_forward(id);
            return Err(status(StatusCode::Unavailable, format!("shard {shard} did not answer within {bound:?}")));
        };
        let bytes = reply.map_err(|_| status(StatusCode::Unavailable, "forward lost"))??;
        Ok(add_shard_hint(method, bytes, WrongShard { region_id, shard: shard as u32 }))
    }
}

/// Sets `shard_hint` on an encoded KV response.
fn add_shard_hint(method: Method, bytes: Bytes, hint: WrongShard) -> Bytes {
    fn set<M: Message + Default>(b: &Bytes, f: impl FnOnce(&mut M)) -> Option<Bytes> {
        let mut m = M::decode(b.clone()).ok()?;
        f(&mut m);
        Some(m.encode_to_vec().into())
    }
    let h = Some(hint);
    let out = match method {
        Method::RawGet => set(&bytes, |m: &mut RawGetResponse| m.shard_hint = h),
        Method::RawBatchGet => set(&bytes, |m: &mut RawBatchGetResponse| m.shard_hint = h),
        Method::RawScan => set(&bytes, |m: &mut RawScanResponse| m.shard_hint = h),
        Method::RawPut => set(&bytes, |m: &mut RawPutResponse| m.shard_hint = h),
        Method::RawBatchPut => set(&bytes, |m: &mut RawBatchPutResponse| m.shard_hint = h),
        Method::RawDelete => set(&bytes, |m: &mut RawDeleteResponse| m.shard_hint = h),
        Method::RawBatchDelete => set(&bytes, |m: &mut RawBatchDeleteResponse| m.shard_hint = h),
        Method::RawDeleteRange => set(&bytes, |m: &mut RawDeleteRangeResponse| m.shard_hint = h),
        Method::RawCas => set(&bytes, |m: &mut RawCasResponse| m.shard_hint = h),
        _ => None,
    };
    out.unwrap_or(bytes)
}

/// The service as the network layer sees it.
pub struct ShardService(pub Rc<StoreService>);

impl Service for ShardService {
    fn call(&self, method: Method, payload: Bytes) -> LocalBoxFuture<HandlerResult> {
        let svc = self.0.clone();
        Box::pin(async move {
            match method {
                Method::RaftBatch => {
                    let batch = RaftMessageBatch::decode(payload)
                        .map_err(|e| status(StatusCode::BadRequest, format!("bad raft batch: {e}")))?;
                    for m in batch.msgs {
                        router::route_raft(&svc.ctx, m);
                    }
                    Ok(Done {}.encode_to_vec().into())
                }
                Method::SnapshotChunk => {
                    let chunk = SnapshotChunk::decode(payload)
                        .map_err(|e| status(StatusCode::BadRequest, format!("bad snapshot chunk: {e}")))?;
                    match svc.snapshots.add(chunk) {
                        Ok(Some(m)) => router::route_raft(&svc.ctx, m),
                        Ok(None) => {}
                        Err(e) => return Err(status(StatusCode::BadRequest, e)),
                    }
                    Ok(Done {}.encode_to_vec().into())
                }
                _ => {
                    let region = StoreService::request_region(method, &payload);
                    match region.and_then(|r| svc.ctx.shard_of(r).map(|s| (r, s))) {
                        Some((r, s)) if s != svc.ctx.shard_id => svc.forward(s, r, method, payload).await,
                        _ => svc.serve_local(method, payload).await,
                    }
                }
            }
        })
    }
}
