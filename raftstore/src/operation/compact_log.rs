//! Raft log GC.
//!
//! *Propose*: every `log-gc-interval` the leader checks its log; once it holds more than
//! `log-gc-count-limit` entries or `log-gc-size-limit` bytes, it proposes compacting up to
//! the index every follower has (or, when the log is past its limits, up to its applied index
//! minus `log-gc-keep`: a lagging follower will get a snapshot).
//! *Apply*: every replica moves its truncated state forward in the apply batch.
//! *Result*: the log engine drops the entries only after RocksDB has flushed an apply state at
//! or past the new truncated index — the raft log is the WAL of RocksDB's WAL-less writes.

use net::proto::raft_cmdpb::{AdminCmdType, AdminRequest, CompactLogRequest, RaftCmdRequest};
use net::proto::raft_serverpb::RaftTruncatedState;

use crate::peer::Peer;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::{CmdError, CmdResponse, CmdResult};

/// The index a leader would compact to now, if any.
pub fn compact_target(peer: &Peer, ctx: &ShardCtx) -> Option<u64> {
    let cfg = &ctx.cfg.raft;
    let applied = peer.raw_node.store().applied_index();
    let (first, _) = peer.raw_node.store().truncated();
    let entries = applied.saturating_sub(first);
    let size = ctx.log.region_bytes(peer.region_id());
    let over = entries > cfg.log_gc_count_limit || size > cfg.log_gc_size_limit;
    // The index every voter and learner already has.
    let min_matched = peer.raw_node.raft.prs().iter().map(|(_, p)| p.matched).min().unwrap_or(0);
    let target = if over { applied.saturating_sub(cfg.log_gc_keep) } else { min_matched.min(applied) };
    // Without pressure, compact only in big enough steps to be worth an entry.
    let worth = over || target.saturating_sub(first) >= cfg.log_gc_count_limit / 2;
    (worth && target > first).then_some(target)
}

/// Proposes compacting the log up to `index` (leader).
pub fn propose(peer: &mut Peer, index: u64) {
    let term = match peer.raw_node.raft.raft_log.term(index) {
        Ok(t) => t,
        Err(_) => return,
    };
    let cmd = RaftCmdRequest {
        header: Some(peer.cmd_header()),
        requests: vec![],
        admin_request: Some(AdminRequest {
            cmd_type: AdminCmdType::CompactLog as i32,
            compact_log: Some(CompactLogRequest { compact_index: index, compact_term: term }),
            ..Default::default()
        }),
    };
    let (tx, _rx) = core_shard::oneshot::channel();
    peer.propose_cmd(cmd, tx);
}

/// Applies a compaction: the truncated state moves; the log itself waits for a flush.
pub fn apply(peer: &mut Peer, admin: &AdminRequest) -> CmdResult {
    let req = admin.compact_log.as_ref().ok_or_else(|| CmdError::Other("compact log without body".into()))?;
    let (truncated, _) = peer.raw_node.store().truncated();
    let applied = peer.raw_node.store().applied_index();
    if req.compact_index <= truncated || req.compact_index > applied + 1 {
        // Already compacted further, or beyond what is applied here: nothing to do.
        return Ok(CmdResponse::default());
    }
    peer.raw_node.mut_store().apply_state_mut().truncated_state =
        Some(RaftTruncatedState { index: req.compact_index, term: req.compact_term });
    peer.pending_log_compact = Some(req.compact_index);
    Ok(CmdResponse::default())
}

/// After a flush made `durable_applied` durable: drop the log entries the truncated state
/// no longer needs.
pub fn on_flushed(peer: &mut Peer, ctx: &ShardCtx, durable_applied: u64) {
    let Some(index) = peer.pending_log_compact else { return };
    if durable_applied < index {
        return;
    }
    peer.pending_log_compact = None;
    // Durable with the shard's next batch; nothing needs to wait for it.
    match ctx.log.compact(peer.region_id(), index + 1) {
        Ok(d) => drop(d),
        Err(e) => tracing::warn!(region_id = peer.region_id(), "log compaction failed: {e}"),
    }
}
