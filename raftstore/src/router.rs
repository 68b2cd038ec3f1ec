//! Routing inside the store: raft messages to the shard owning their region, the shard
//! mailbox dispatcher, and the placement coordinator (shard 0).
//!
//! Every shard keeps a copy of the store's directory (region → shard). Shard 0 is its
//! authority for new regions: a message for a region the directory does not know goes to
//! shard 0, which places the region on the least-loaded shard and tells everyone. After a
//! split, shard 0 also decides whether the new region should move to a less-loaded shard.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;

use crate::service::StoreService;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::{Event, ShardMsg};

/// Delivers a raft message to the shard owning its region.
pub fn route_raft(ctx: &ShardCtx, m: RaftMessage) {
    match ctx.shard_of(m.region_id) {
        Some(s) if s == ctx.shard_id => ctx.push(Event::Raft(Box::new(m))),
        Some(s) => send(ctx, s, ShardMsg::Raft(Box::new(m))),
        None if ctx.shard_id == 0 => place(ctx, m),
        None => send(ctx, 0, ShardMsg::Place(Box::new(m))),
    }
}

/// Sends `msg` to shard `to`: at once if its mailbox has room; otherwise raft messages are
/// dropped (raft retransmits) and anything else waits in a task.
pub fn send(ctx: &ShardCtx, to: usize, msg: ShardMsg) {
    if let Err(core_shard::mailbox::TrySendError::Full(msg)) = ctx.outbox.try_send(to, msg) {
        // The mailbox is full this turn: raft messages may be dropped (raft retransmits),
        // everything else waits.
        if !matches!(msg, ShardMsg::Raft(_)) {
            let outbox = ctx.outbox.clone();
            glommio::spawn_local(async move {
                let _ = outbox.send(to, msg).await;
            })
            .detach();
        }
    }
}

/// Coordinator: chooses the shard of a region first seen in `m`.
fn place(ctx: &ShardCtx, m: RaftMessage) {
    if let Some(s) = ctx.shard_of(m.region_id) {
        return route_raft_to(ctx, s, m);
    }
    // A region whose range an initialized region of this store still covers is being created
    // by a split this store has not applied yet: the split creates the peer, not the message.
    // A vote request is kept until then and delivered to the new peer: the new region's
    // first candidate (next to the parent's leader, which applies the split first) would
    // otherwise wait a whole election timeout (1-2 s) before asking again, and the new region
    // would have no leader meanwhile.
    if let Some(other) = ctx.overlapping_region(m.region_id, &m.start_key, &m.end_key) {
        let vote = m.message.as_ref().is_some_and(|msg| {
            msg.msg_type == MessageType::MsgRequestVote as i32 || msg.msg_type == MessageType::MsgRequestPreVote as i32
        });
        tracing::debug!(region_id = m.region_id, overlapping = other, vote, "message for a region still covered here");
        if vote {
            ctx.hold_for_split(m);
        }
        return;
    }
    let target = ctx.shared.least_loaded_shard();
    ctx.announce(m.region_id, Some(target));
    route_raft_to(ctx, target, m);
}

fn route_raft_to(ctx: &ShardCtx, shard: usize, m: RaftMessage) {
    if shard == ctx.shard_id {
        ctx.push(Event::Raft(Box::new(m)));
    } else {
        send(ctx, shard, ShardMsg::Raft(Box::new(m)));
    }
}

/// Coordinator: a split created `region_id` on `shard`; move it if another shard has
/// clearly fewer regions.
fn on_created(ctx: &ShardCtx, region_id: u64, shard: usize) {
    for m in ctx.take_held_for_split(region_id) {
        route_raft(ctx, m);
    }
    if !ctx.cfg.split.balance_shards_on_split || ctx.shards < 2 {
        return;
    }
    let counts: Vec<u32> = ctx.shared.region_counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let target = ctx.shared.least_loaded_shard();
    if target != shard && counts[target] + 1 < counts[shard] {
        let msg = ShardMsg::HandoverOut { region_id, to_shard: target };
        if shard == ctx.shard_id {
            ctx.push(Event::HandoverOut { region_id, to_shard: target });
        } else {
            send(ctx, shard, msg);
        }
    }
}

/// Handles one mailbox message.
pub fn dispatch(ctx: &Rc<ShardCtx>, service: &Rc<StoreService>, msg: ShardMsg, startup: &crate::server::StartupSink) {
    match msg {
        ShardMsg::Raft(m) => route_raft(ctx, *m),
        ShardMsg::Place(m) => place(ctx, *m),
        ShardMsg::Directory { region_id, shard } => ctx.set_dir(region_id, shard),
        ShardMsg::Range { region_id, range } => ctx.set_range(region_id, range),
        ShardMsg::Operator(step) => ctx.push(Event::Operator(step)),
        ShardMsg::Rebalance { to_shard } => ctx.push(Event::Rebalance { to_shard }),
        ShardMsg::Created { region_id, shard } => on_created(ctx, region_id, shard),
        ShardMsg::HandoverOut { region_id, to_shard } => ctx.push(Event::HandoverOut { region_id, to_shard }),
        ShardMsg::HandoverIn(h) => ctx.push(Event::HandoverIn(h)),
        ShardMsg::HandoverDone { region_id } => ctx.push(Event::HandoverDone { region_id }),
        ShardMsg::HandoverFailed { region_id } => ctx.push(Event::HandoverFailed { region_id }),
        ShardMsg::Forward { from, id, method, payload } => {
            let (ctx, service) = (ctx.clone(), service.clone());
            glommio::spawn_local(async move {
                let result = service.serve_local(method, payload).await;
                let _ = ctx.outbox.send(from, ShardMsg::ForwardReply { id, result }).await;
            })
            .detach();
        }
        ShardMsg::ForwardReply { id, result } => ctx.finish_forward(id, result),
        m @ (ShardMsg::Loaded { .. } | ShardMsg::StartupPlan { .. }) => startup.deliver(m),
    }
}

/// Hands a PD operator step to the shard hosting its region.
pub fn route_step(ctx: &ShardCtx, step: net::proto::pdpb::OperatorStep) {
    match ctx.shard_of(step.region_id) {
        Some(s) if s == ctx.shard_id => ctx.push(Event::Operator(Box::new(step))),
        Some(s) => send(ctx, s, ShardMsg::Operator(Box::new(step))),
        None => {}
    }
}

/// Coordinator: if a shard has more than one region more than another, asks it to move one.
pub fn balance_shards(ctx: &ShardCtx) {
    if ctx.shards < 2 || ctx.shared.shard_balance_paused.load(Ordering::Relaxed) {
        return;
    }
    let counts: Vec<u32> = ctx.shared.region_counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let (Some(src), Some(dst)) = (
        (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))),
        (0..counts.len()).min_by_key(|&i| (counts[i], i)),
    ) else {
        return;
    };
    if counts[src] <= counts[dst] + 1 {
        return;
    }
    if src == ctx.shard_id {
        ctx.push(Event::Rebalance { to_shard: dst });
    } else {
        send(ctx, src, ShardMsg::Rebalance { to_shard: dst });
    }
}
