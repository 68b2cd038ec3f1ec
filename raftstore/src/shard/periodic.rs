//! Work driven by the shard's tick: raft ticks, region heartbeats to PD, raft log GC with
//! RocksDB flushes, and split checks (on the background queue).

use std::time::{Duration, Instant};

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::pdpb::RegionHeartbeatRequest;

use super::msg::{CmdResult, Event};
use super::Shard;
use crate::operation::{compact_log, split};

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
            if !p.paused && !p.applying_snapshot && p.raw_node.tick() {
                self.touched.insert(*id);
            }
            if !p.paused && p.retry_reads(now, read_retry) {
                self.touched.insert(*id);
            }
            if p.raw_node.has_ready() {
                self.touched.insert(*id);
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
        let shard_balance = cfg.balance.shard_balance_interval_ms;
        if self.ctx.shard_id == 0 && shard_balance > 0 && every(self.ticks, shard_balance, base) {
            crate::router::balance_shards(&self.ctx);
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

    fn send_region_heartbeats(&mut self, all: bool) {
        for p in self.peers.values_mut() {
            if !p.is_leader() || !(all || p.heartbeat_due) {
                continue;
            }
            p.heartbeat_due = false;
            let (pending_peers, down_peers) = lagging_peers(p);
            let req = RegionHeartbeatRequest {
                header: None,
                region: Some(p.region().clone()),
                leader: Some(p.meta.clone()),
                leader_shard: self.ctx.shard_id as u32,
                down_peers,
                pending_peers,
                approximate_size: p.approximate.0,
                approximate_keys: p.approximate.1,
                term: p.raw_node.raft.term,
            };
            let ctx = self.ctx.clone();
            glommio::spawn_local(async move {
                match ctx.pd.region_heartbeat(req).await {
                    Ok(Some(step)) => ctx.push(Event::Operator(Box::new(step))),
                    Ok(None) => {}
                    Err(e) => tracing::debug!("region heartbeat: {e}"),
                }
            })
            .detach();
        }
    }

    fn propose_log_gc(&mut self) {
        let ctx = self.ctx.clone();
        for (id, p) in self.peers.iter_mut() {
            if !p.is_leader() || p.paused || p.handover_to.is_some() {
                continue;
            }
            if let Some(index) = compact_log::compact_target(p, &ctx) {
                compact_log::propose(p, index);
                self.touched.insert(*id);
            }
        }
    }

    /// Flushes RocksDB if some peer waits for a durable apply state, so its log can go.
    fn flush_for_gc(&mut self) {
        let applied: Vec<(u64, u64)> = self
            .peers
            .values()
            .filter(|p| p.pending_log_compact.is_some())
            .map(|p| (p.region_id(), p.raw_node.store().applied_index()))
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

    pub(super) fn on_flushed(&mut self, applied: Vec<(u64, u64)>) {
        let ctx = self.ctx.clone();
        for (region_id, index) in applied {
            if let Some(p) = self.peers.get_mut(&region_id) {
                compact_log::on_flushed(p, &ctx, index);
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

    fn run_split_checks(&mut self) {
        let cfg = self.ctx.cfg.clone();
        for p in self.peers.values() {
            let busy = p.splitting.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
            if !p.is_leader() || busy || p.paused || p.handover_to.is_some() || !p.is_initialized() {
                continue;
            }
            let region = p.region().clone();
            let epoch = p.epoch();
            let Ok(snap) = self.ctx.engine.snapshot() else { return };
            let ctx = self.ctx.clone();
            let (size, keys) = (cfg.split.region_split_size, cfg.split.region_split_keys);
            let task = async move {
                let region_id = region.id;
                let r =
                    glommio::executor().spawn_blocking(move || split::check_region(&snap, &region, size, keys)).await;
                match r {
                    Ok((size, keys, split_key)) => {
                        ctx.push(Event::SplitCheckResult { region_id, epoch, split_key, size, keys })
                    }
                    Err(e) => tracing::warn!(region_id, "split check failed: {e}"),
                }
            };
            if let Ok(t) = glommio::spawn_local_into(task, self.ctx.queues.background) {
                t.detach();
            }
        }
    }

    pub(super) fn on_split_check(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        key: Option<Bytes>,
        size: u64,
        keys: u64,
    ) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        p.approximate = (size, keys);
        if let Some(k) = key {
            self.start_split(region_id, epoch, k, None);
        }
    }

    pub(super) fn on_split_ids(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        split_key: Bytes,
        new_region_id: u64,
        new_peer_ids: Vec<u64>,
        reply: Option<oneshot::Sender<CmdResult>>,
    ) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let (tx, rx) = oneshot::channel();
        split::propose(p, &epoch, split_key, new_region_id, new_peer_ids, tx);
        self.touched.insert(region_id);
        let started = Instant::now();
        glommio::spawn_local(async move {
            let r = rx.await.unwrap_or_else(|_| Err(crate::region_error::stale_command("split dropped")));
            if let Err(e) = &r {
                tracing::debug!(region_id, "split not applied after {:?}: {e:?}", started.elapsed());
            }
            if let Some(reply) = reply {
                reply.send(r);
            }
        })
        .detach();
    }
}

/// Peers the leader sees lagging (pending: needs a snapshot or has not caught up to the
/// log's start) and silent (down: not heard from within an election timeout).
fn lagging_peers(p: &crate::peer::Peer) -> (Vec<net::proto::metapb::Peer>, Vec<net::proto::metapb::Peer>) {
    let (truncated, _) = p.raw_node.store().truncated();
    let mut pending = Vec::new();
    let mut down = Vec::new();
    for (id, pr) in p.raw_node.raft.prs().iter() {
        if *id == p.meta.id {
            continue;
        }
        let Some(peer) = p.peer_by_id(*id).cloned() else { continue };
        if pr.state == raft::ProgressState::Snapshot || pr.matched < truncated || pr.matched == 0 {
            pending.push(peer.clone());
        }
        if !pr.recent_active {
            down.push(peer);
        }
    }
    (pending, down)
}
