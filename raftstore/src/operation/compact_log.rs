//! Raft log GC.
//!
//! *Propose*: every `log-gc-interval` each leader checks its log; once it holds more than
//! `log-gc-count-limit` entries or `log-gc-size-limit` bytes, it proposes compacting up to
//! the index every follower has (or, when the log is past its limits, up to its applied index
//! minus `log-gc-keep`: a lagging follower will get a snapshot).
//! *Apply*: every replica moves its truncated state forward in the apply batch.
//! *Result*: the log engine drops the entries only after RocksDB has flushed an apply state at
//! or past the new truncated index — the raft log is the WAL of RocksDB's WAL-less writes. So
//! every `flush-interval` the shard flushes RocksDB if some peer waits for that, then compacts
//! those peers' logs and lets the log engine purge the segments nobody needs.

use net::proto::raft_cmdpb::{AdminCmdType, AdminRequest, CompactLogRequest, RaftCmdRequest};
use net::proto::raft_serverpb::RaftTruncatedState;

use crate::cmd::{CmdError, CmdResponse, CmdResult};
use crate::ctx::ShardCtx;
use crate::msg::Event;
use crate::peer::{Peer, Work};
use crate::shard::Shard;

impl Shard {
    /// Every leader that may compact its log proposes it (tick work).
    pub(crate) fn propose_log_gc(&mut self) {
        let ctx = self.ctx.clone();
        for (id, p) in self.peers.iter_mut() {
            if !p.is_leader() || !p.allows(Work::Maintain) {
                continue;
            }
            if let Some(index) = p.compact_target(&ctx) {
                p.propose_compact_log(index);
                self.touched.insert(*id);
            }
        }
    }

    /// Flushes RocksDB if some peer waits for a durable apply state, so its log can go.
    pub(crate) fn flush_for_gc(&mut self) {
        let applied: Vec<(u64, u64)> = self
            .peers
            .values()
            .filter(|p| p.pending_log_compact().is_some())
            .map(|p| (p.region_id(), p.raft().store().applied_index()))
            .collect();
        if applied.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        let task = async move {
            match ctx.engine.flush().await {
                Ok(()) => ctx.push(Event::Flushed { applied }),
                Err(e) => tracing::warn!("flush failed: {e}"),
            }
        };
        if let Ok(t) = glommio::spawn_local_into(task, self.ctx.queues.background) {
            t.detach();
        }
    }

    /// RocksDB flushed: the applied indexes in `applied` are durable.
    pub(crate) fn on_flushed(&mut self, applied: Vec<(u64, u64)>) {
        let ctx = self.ctx.clone();
        for (region_id, index) in applied {
            if let Some(p) = self.peers.get_mut(&region_id) {
                p.on_log_flushed(&ctx, index);
            }
        }
        // The log engine may now delete segments nobody needs.
        let log = self.ctx.log.clone();
        glommio::spawn_local(async move {
            match log.purge().await {
                Ok(r) if !r.pinned.is_empty() => tracing::debug!(pinned = ?r.pinned, "log segments pinned"),
                Ok(_) => {}
                Err(e) => tracing::warn!("log purge: {e}"),
            }
        })
        .detach();
    }
}

impl Peer {
    /// The index a leader would compact to now, if any.
    pub fn compact_target(&self, ctx: &ShardCtx) -> Option<u64> {
        let cfg = &ctx.cfg.raft;
        let applied = self.raft().store().applied_index();
        let (first, _) = self.raft().store().truncated();
        let entries = applied.saturating_sub(first);
        let size = ctx.log.region_bytes(self.region_id());
        let over = entries > cfg.log_gc_count_limit || size > cfg.log_gc_size_limit;
        // The index every voter and learner already has.
        let min_matched = self.raft().raft.prs().iter().map(|(_, p)| p.matched).min().unwrap_or(0);
        let target = if over { applied.saturating_sub(cfg.log_gc_keep) } else { min_matched.min(applied) };
        // Without pressure, compact only in big enough steps to be worth an entry.
        let worth = over || target.saturating_sub(first) >= cfg.log_gc_count_limit / 2;
        (worth && target > first).then_some(target)
    }

    /// Proposes compacting the log up to `index` (leader).
    pub fn propose_compact_log(&mut self, index: u64) {
        let term = match self.raft().raft.raft_log.term(index) {
            Ok(t) => t,
            Err(_) => return,
        };
        let cmd = RaftCmdRequest {
            header: Some(self.cmd_header()),
            requests: vec![],
            admin_request: Some(AdminRequest {
                cmd_type: AdminCmdType::CompactLog as i32,
                compact_log: Some(CompactLogRequest { compact_index: index, compact_term: term }),
                ..Default::default()
            }),
        };
        let (tx, _rx) = core_shard::oneshot::channel();
        self.propose_cmd(cmd, tx);
    }

    /// Applies a compaction: the truncated state moves; the log itself waits for a flush.
    pub(super) fn apply_compact_log(&mut self, admin: &AdminRequest) -> CmdResult {
        let req = admin.compact_log.as_ref().ok_or_else(|| CmdError::Other("compact log without body".into()))?;
        let (truncated, _) = self.raft().store().truncated();
        let applied = self.raft().store().applied_index();
        if req.compact_index <= truncated || req.compact_index > applied + 1 {
            // Already compacted further, or beyond what is applied here: nothing to do.
            return Ok(CmdResponse::default());
        }
        self.raft_mut().mut_store().apply_state_mut().truncated_state =
            Some(RaftTruncatedState { index: req.compact_index, term: req.compact_term });
        self.set_pending_log_compact(Some(req.compact_index));
        Ok(CmdResponse::default())
    }

    /// After a flush made `durable_applied` durable: drop the log entries the truncated state
    /// no longer needs.
    pub fn on_log_flushed(&mut self, ctx: &ShardCtx, durable_applied: u64) {
        let Some(index) = self.pending_log_compact() else { return };
        if durable_applied < index {
            return;
        }
        self.set_pending_log_compact(None);
        // Durable with the shard's next batch; nothing needs to wait for it.
        match ctx.log.compact(self.region_id(), index + 1) {
            Ok(d) => drop(d),
            Err(e) => tracing::warn!(region_id = self.region_id(), "log compaction failed: {e}"),
        }
    }
}
