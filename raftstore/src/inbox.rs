//! A shard's mailbox: what the other shards of the store send it, batched per loop turn and
//! handed to whoever handles each kind — the raft loop (as an event), the router, the service
//! (a forwarded request), or the start-up agreement.

use std::rc::Rc;

use core_shard::mailbox::Inbox;

use crate::ctx::ShardCtx;
use crate::msg::{Event, ShardMsg};
use crate::operation::split::place_split_region;
use crate::router;
use crate::service::StoreService;
use crate::startup::StartupSink;

/// Receives the shard's mailbox until the store stops.
pub async fn run(inbox: Inbox<ShardMsg>, ctx: Rc<ShardCtx>, service: Rc<StoreService>, startup: Rc<StartupSink>) {
    let mut buf = Vec::new();
    while inbox.recv_into(&mut buf).await {
        for m in buf.drain(..) {
            dispatch(&ctx, &service, &startup, m);
        }
    }
}

fn dispatch(ctx: &Rc<ShardCtx>, service: &Rc<StoreService>, startup: &StartupSink, msg: ShardMsg) {
    match msg {
        ShardMsg::Raft(m) => router::route_raft(ctx, *m),
        ShardMsg::Place(m) => router::place(ctx, *m),
        ShardMsg::Directory { region_id, shard } => ctx.directory.set_shard(region_id, shard),
        ShardMsg::Range { region_id, range } => ctx.directory.set_range(region_id, range),
        ShardMsg::Operator(step) => ctx.push(Event::Operator(step)),
        ShardMsg::Rebalance { to_shard } => ctx.push(Event::Rebalance { to_shard }),
        ShardMsg::Created { region_id, shard } => place_split_region(ctx, region_id, shard),
        ShardMsg::HandoverOut { region_id, to_shard } => ctx.push(Event::HandoverOut { region_id, to_shard }),
        ShardMsg::HandoverIn(h) => ctx.push(Event::HandoverIn(h)),
        ShardMsg::HandoverDone { region_id } => ctx.push(Event::HandoverDone { region_id }),
        ShardMsg::HandoverFailed { region_id } => ctx.push(Event::HandoverFailed { region_id }),
        ShardMsg::Forward { from, id, request } => service.serve_forwarded(from, id, *request),
        ShardMsg::ForwardReply { id, result } => ctx.finish_forward(id, result),
        m @ (ShardMsg::Loaded { .. } | ShardMsg::StartupPlan { .. }) => startup.deliver(m),
    }
}
