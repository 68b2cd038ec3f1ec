//! The shard's tick and what it schedules: raft ticks (and read index retries), the slow
//! request sweep, region heartbeats, log GC and its flushes, split checks, MVCC GC and shard
//! balance.
//! Each piece of work lives with what it does; this file only says when.

use std::time::Instant;

use super::Shard;
use crate::msg::Event;
use crate::peer::Work;

fn every(ticks: u64, interval_ms: u64, base_ms: u64) -> bool {
    let n = (interval_ms / base_ms.max(1)).max(1);
    ticks.is_multiple_of(n)
}

impl Shard {
    pub(super) fn on_tick(&mut self) {
        self.ticks += 1;
        let now = std::time::Instant::now();
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let base = std::time::Duration::from_millis(self.ctx.cfg.raft.base_tick_ms);
        if self.ticks > 1 && gap > base * 5 {
            tracing::warn!(
                shard = self.ctx.shard_id,
                gap_ms = gap.as_millis() as u64,
                lost_wakeups = glommio::lost_wakeups(),
                "raft ticks stalled"
            );
        }
        let read_retry = base * (2 * self.ctx.cfg.raft.heartbeat_ticks as u32);
        for (id, p) in self.peers.iter_mut() {
            if p.allows(Work::Raft) && p.raft_mut().tick() {
                self.touched.insert(*id);
            }
            if p.allows(Work::Read) && p.retry_reads(now, read_retry) {
                self.touched.insert(*id);
            }
            if p.raft().has_ready() {
                self.touched.insert(*id);
            }
            if let Some(term) = p.start_max_ts_sync() {
                let (ctx, region_id) = (self.ctx.clone(), *id);
                glommio::spawn_local(async move {
                    let ts = ctx.pd.get_ts().await;
                    if let Err(e) = &ts {
                        tracing::debug!(region_id, "TSO for one-phase commit: {e}");
                    }
                    ctx.push(Event::MaxTsSynced { region_id, term, ts: ts.ok() });
                })
                .detach();
            }
        }
        self.sweep_requests(now);
        let cfg = self.ctx.cfg.clone();
        let base = cfg.raft.base_tick_ms;
        self.send_region_heartbeats(every(self.ticks, cfg.pd.region_heartbeat_ms, base));
        if every(self.ticks, cfg.raft.log_gc_interval_ms, base) {
            self.propose_log_gc();
        }
        if every(self.ticks, cfg.raft.flush_interval_ms, base) {
            self.flush_for_gc();
        }
        if every(self.ticks, cfg.split.split_check_interval_ms, base) {
            self.run_split_checks();
        }
        if cfg.gc.interval_ms > 0 && every(self.ticks, cfg.gc.interval_ms, base) {
            self.run_gc();
        }
        let shard_balance = cfg.balance.shard_balance_interval_ms;
        if self.ctx.shard_id == 0 && shard_balance > 0 && every(self.ticks, shard_balance, base) {
            self.balance_shards();
        }
    }

    /// Logs (once) and counts the requests pending past `request.slow-ms`, with the stage the
    /// peer shows them in now.
    fn sweep_requests(&self, now: Instant) {
        let peers = &self.peers;
        let logged = self.ctx.requests.borrow_mut().sweep(now, |region_id, stage| {
            match (stage.entry_index(), peers.get(&region_id)) {
                (Some(index), Some(p)) => p.proposal_stage(index),
                _ => stage,
            }
        });
        if logged > 0 {
            self.ctx.shared.slow_requests.fetch_add(logged as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
