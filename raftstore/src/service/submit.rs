//! Handing a request to the shard's raft loop and waiting for its answer — at most
//! `request.timeout-ms`, after which the request is answered by the bound (see
//! `crate::tracker`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use core_shard::oneshot;
use net::proto::errorpb::RegionError;
use net::proto::kvrpcpb::Context;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::Request;
use net::Method;

use super::StoreService;
use crate::cmd::{AdminCmd, CmdError, CmdResponse, ReadRequest, ReadResult};
use crate::msg::Event;
use crate::region_error;
use crate::tracker::Ticket;

/// The region and epoch a request's context names.
pub(super) fn region_of(c: &Option<Context>) -> (u64, RegionEpoch) {
    let c = c.clone().unwrap_or_default();
    (c.region_id, c.region_epoch.unwrap_or_default())
}

/// Splits a command error into the response's `region_error` and `error` fields.
pub(super) fn split_err(e: CmdError) -> (Option<RegionError>, String) {
    match e {
        CmdError::Region(r) => (Some(*r), String::new()),
        CmdError::Other(s) => (None, s),
        CmdError::Key(k) => (None, k.to_string()),
    }
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
        let expired = std::future::poll_fn(|cx| self.ctx.requests.borrow_mut().poll_expired(ticket, cx));
        let result = futures_lite::future::or(async { Some(rx.await) }, async {
            expired.await;
            None
        })
        .await;
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

    pub(super) async fn write(
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

    pub(super) async fn read(&self, method: Method, ctx: &Option<Context>, req: ReadRequest) -> ReadResult {
        let (region_id, epoch) = region_of(ctx);
        let ticket = self.admit(region_id, method);
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Read { region_id, epoch, req, reply: tx, ticket });
        self.answer(ticket, false, rx).await
    }

    /// Hands an operator command to the raft loop and waits for its result.
    pub(super) async fn admin(
        &self,
        method: Method,
        ctx: &Option<Context>,
        cmd: AdminCmd,
    ) -> Result<CmdResponse, CmdError> {
        let (region_id, epoch) = region_of(ctx);
        let ticket = self.admit(region_id, method);
        let (tx, rx) = oneshot::channel();
        self.ctx.push(Event::Admin { region_id, epoch, cmd, reply: tx, ticket });
        self.answer(ticket, false, rx).await
    }
}
