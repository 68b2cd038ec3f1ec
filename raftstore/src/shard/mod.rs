//! A shard's raft loop: it owns every peer of the shard and handles events in batches —
//! everything queued since the last turn — then the readies of the peers those events
//! touched, then flushes the transport (one batch per destination store).
//!
//! `dispatch` is dispatch only: each arm is one call (the raftstore-v2 fsm rule). Handlers of
//! generic events live here (`handlers`, `lifecycle`, `schedule`, `periodic` for the tick);
//! a command's handlers live with its life in `crate::operation` (split, handover, log GC).

mod handlers;
mod lifecycle;
mod periodic;
mod schedule;

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::ctx::ShardCtx;
use crate::msg::Event;

use crate::peer::{Peer, Work};

/// A shard's peers and their raft loop.
pub struct Shard {
    pub(crate) ctx: Rc<ShardCtx>,
    pub(crate) peers: HashMap<u64, Peer>,
    /// Peers whose ready must be looked at this turn.
    pub(crate) touched: BTreeSet<u64>,
    ticks: u64,
    /// When the last tick was handled (stall diagnostics).
    last_tick: std::time::Instant,
    /// Regions this shard is handing to another.
    pub(crate) handovers_in_flight: BTreeSet<u64>,
    /// Regions whose destroyed peer's state is being removed.
    pub(crate) destroying: BTreeSet<u64>,
    /// MVCC GC: where each region's walk continues.
    pub(crate) gc_cursors: HashMap<u64, Vec<u8>>,
}

impl Shard {
    /// A shard with the peers recovered at start-up.
    pub fn new(ctx: Rc<ShardCtx>, peers: HashMap<u64, Peer>) -> Self {
        let touched = peers.keys().copied().collect();
        Shard {
            ctx,
            peers,
            touched,
            ticks: 0,
            last_tick: std::time::Instant::now(),
            handovers_in_flight: BTreeSet::new(),
            destroying: BTreeSet::new(),
            gc_cursors: HashMap::new(),
        }
    }

    /// Runs until the store stops.
    pub async fn run(mut self) {
        let mut events = Vec::new();
        loop {
            self.ctx.next_events(&mut events).await;
            if self.ctx.shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            for ev in events.drain(..) {
                self.dispatch(ev);
            }
            self.process_readies();
            self.ctx.transport.flush();
            self.publish_busy_time();
            glommio::yield_if_needed().await;
        }
        for p in self.peers.values_mut() {
            // Their entries may still commit elsewhere: the answer must not invite a retry.
            p.fail_pending(
                || crate::region_error::undetermined("the store stopped with the request in flight"),
                || crate::region_error::server_is_busy("the store is stopping", 100),
            );
        }
    }

    fn dispatch(&mut self, ev: Event) {
        match ev {
            Event::Raft(m) => self.on_raft_message(*m),
            Event::Write { region_id, epoch, requests, reply, ticket } => {
                self.on_write(region_id, epoch, requests, reply, ticket)
            }
            Event::Read { region_id, epoch, req, reply, ticket } => self.on_read(region_id, epoch, req, reply, ticket),
            Event::Admin { region_id, epoch, cmd, reply, ticket } => {
                self.on_admin(region_id, epoch, cmd, reply, ticket)
            }
            Event::Debug { region_id, reply } => self.on_debug(region_id, reply),
            Event::Tick => self.on_tick(),
            Event::Persisted { region_id, peer_id, number, msgs } => {
                self.on_persisted(region_id, peer_id, number, msgs)
            }
            Event::ApplyWritten { region_id, peer_id } => self.on_apply_written(region_id, peer_id),
            Event::EntriesFetched { region_id, ctx } => self.on_entries_fetched(region_id, ctx),
            Event::SnapshotGenerated { region_id, snap } => self.on_snapshot_generated(region_id, snap),
            Event::SnapshotApplied { region_id, peer_id, number, msgs } => {
                self.on_snapshot_applied(region_id, peer_id, number, msgs)
            }
            Event::SnapshotSent { region_id, to, ok } => self.on_snapshot_sent(region_id, to, ok),
            Event::Flushed { applied } => self.on_flushed(applied),
            Event::MaxTsSynced { region_id, term, ts } => self.on_max_ts_synced(region_id, term, ts),
            Event::GcBatch { region_id, epoch, safe_point, keys, next } => {
                self.on_gc_batch(region_id, epoch, safe_point, keys, next)
            }
            Event::SplitCheckResult { region_id, epoch, split_key, size, keys } => {
                self.on_split_check(region_id, epoch, split_key, size, keys)
            }
            Event::SplitIds { region_id, epoch, split_key, new_region_id, new_peer_ids, reply } => {
                self.on_split_ids(region_id, epoch, split_key, new_region_id, new_peer_ids, reply)
            }
            Event::HandoverOut { region_id, to_shard } => self.on_handover_out(region_id, to_shard),
            Event::HandoverIn(h) => self.on_handover_in(*h),
            Event::HandoverLanded(h) => self.on_handover_landed(*h),
            Event::HandoverDone { region_id } => self.on_handover_done(region_id),
            Event::HandoverFailed { region_id } => self.on_handover_failed(region_id),
            Event::Destroyed { region_id } => self.on_destroyed(region_id),
            Event::Operator(step) => self.on_operator(*step),
            Event::Rebalance { to_shard } => self.on_rebalance(to_shard),
        }
    }

    /// Publishes the executor's busy time (`StoreShared::busy_nanos`) for benchmarks.
    fn publish_busy_time(&self) {
        if let Some(b) = self.ctx.shared.busy_nanos.get(self.ctx.shard_id) {
            // `executor_stats` hands over (and resets) what accumulated since the last call.
            let busy = glommio::executor().executor_stats().total_runtime();
            b.fetch_add(busy.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Handles the readies of every touched peer until none has more.
    fn process_readies(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for region_id in touched {
            for _ in 0..8 {
                let Some(peer) = self.peers.get_mut(&region_id) else { break };
                if !peer.raft().has_ready() || !peer.allows(Work::Raft) {
                    break;
                }
                let effects = peer.handle_ready(&self.ctx);
                self.after_ready(region_id, effects);
            }
            if let Some(peer) = self.peers.get_mut(&region_id) {
                peer.push_fetches(&self.ctx);
                peer.maybe_generate_snapshot(&self.ctx);
            }
            self.maybe_start_handover(region_id);
        }
    }
}
