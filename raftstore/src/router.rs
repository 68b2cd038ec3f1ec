//! Routing inside the store: raft messages and PD operator steps to the shard owning their
//! region, and the placement of regions first seen in a raft message.
//!
//! Every shard keeps a copy of the store's directory (region → shard). Shard 0 is its
//! authority for new regions: a message for a region the directory does not know goes to
//! shard 0, which places the region on the least-loaded shard and tells everyone. (Where a
//! split's new region goes is `operation::split`; moving regions between shards is
//! `operation::handover`.)

use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;

use crate::ctx::ShardCtx;
use crate::msg::{Event, ShardMsg};

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
pub fn place(ctx: &ShardCtx, m: RaftMessage) {
    if let Some(s) = ctx.shard_of(m.region_id) {
        return route_raft_to(ctx, s, m);
    }
    // A region whose range an initialized region of this store still covers is being created
    // by a split this store has not applied yet: the split creates the peer, not the message.
    // A vote request is kept until then and delivered to the new peer: the new region's
    // first candidate (next to the parent's leader, which applies the split first) would
    // otherwise wait a whole election timeout (1-2 s) before asking again, and the new region
    // would have no leader meanwhile.
    if let Some(other) = ctx.directory.overlapping_region(m.region_id, &m.start_key, &m.end_key) {
        let vote = m.message.as_ref().is_some_and(|msg| {
            msg.msg_type == MessageType::MsgRequestVote as i32 || msg.msg_type == MessageType::MsgRequestPreVote as i32
        });
        tracing::debug!(region_id = m.region_id, overlapping = other, vote, "message for a region still covered here");
        if vote {
            ctx.directory.hold_for_split(m);
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

/// Hands a PD operator step to the shard hosting its region.
pub fn route_step(ctx: &ShardCtx, step: net::proto::pdpb::OperatorStep) {
    match ctx.shard_of(step.region_id) {
        Some(s) if s == ctx.shard_id => ctx.push(Event::Operator(Box::new(step))),
        Some(s) => send(ctx, s, ShardMsg::Operator(Box::new(step))),
        None => {}
    }
}
