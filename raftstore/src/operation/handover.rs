//! Moving a region between the shards of this store (a **handover**), and shard balance,
//! which decides such moves.
//!
//! *Ask*: the coordinator (shard 0) asks the region's shard to move it: after a split placed
//! the new region on a fuller shard (`split::place_split_region`), or when shard balance finds
//! two shards more than one region apart ([`Shard::balance_shards`], every
//! `shard-balance-interval`; the fullest shard moves a leader if it leads more than the target,
//! a follower otherwise).
//! *Send*: the source stops taking writes, waits for the proposals in flight to apply and for
//! its appends to be durable, pauses the peer (no raft processing; waiting reads are told to
//! retry) and sends the target its region state (with `handover_seq + 1`), apply state, hard
//! state, live log entries and data.
//! *Land*: the target writes all of it durably, creates the peer and says done.
//! *Result*: the source drops its copy (data, state, log); if the target failed, the source
//! resumes. A crash in between leaves the region on both shards: at start-up the copy with
//! the higher `handover_seq` wins. The moved peer restarts as a follower (raft state is not
//! carried over); a moved leader campaigns as soon as it lands, as in a leader transfer
//! (its log is the one it led with, and its old self is paused with its lease expired), so
//! its region is led again within a round trip instead of after an election timeout.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use net::proto::raft_serverpb::{PeerState, RegionLocalState};
use rocksdb::WriteBatch;

use crate::engine::put_msg;
use crate::keys;
use crate::msg::{Event, Handover, Landed, ShardMsg};
use crate::peer::{Lifecycle, Peer, Work};
use crate::region_error;
use crate::shard::Shard;
use crate::storage::{decode_entry, encode_entry, reset_log};

impl Shard {
    /// The coordinator asks to move `region_id` to `to_shard`: stop taking writes first.
    pub(crate) fn on_handover_out(&mut self, region_id: u64, to_shard: usize) {
        if to_shard == self.ctx.shard_id || to_shard >= self.ctx.shards {
            return;
        }
        if let Some(p) = self.peers.get_mut(&region_id).filter(|p| p.is_initialized() && p.allows(Work::Move)) {
            p.set_lifecycle(Lifecycle::HandingOver { to: to_shard, paused: false });
            self.touched.insert(region_id);
        }
    }

    /// Starts the transfer once nothing of the peer is in flight.
    pub(crate) fn maybe_start_handover(&mut self, region_id: u64) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let Lifecycle::HandingOver { to, paused: false } = p.lifecycle() else { return };
        if !p.is_quiet() {
            return;
        }
        let Ok(snap) = self.ctx.engine.snapshot() else { return };
        let was_leader = p.is_leader();
        p.set_lifecycle(Lifecycle::HandingOver { to, paused: true });
        p.expire_lease();
        // A paused peer hears no read index: its waiting reads retry (and find the region
        // at its new shard) rather than wait for the whole transfer.
        p.fail_reads(|| region_error::server_is_busy("region is moving between shards", 20));
        let store = p.raft().store();
        let region = store.region().clone();
        let apply = store.apply_state().clone();
        let hard_state = store.hard_state();
        let (truncated, _) = store.truncated();
        let last = p.raft().raft.raft_log.last_index();
        let state = RegionLocalState {
            state: PeerState::Normal as i32,
            region: Some(region.clone()),
            handover_seq: p.handover_seq() + 1,
        };
        let ctx = self.ctx.clone();
        self.handovers_in_flight.insert(region_id);
        tracing::info!(region_id, from = ctx.shard_id, to, "handing region over");
        glommio::spawn_local(async move {
            let entries = if last > truncated {
                match ctx.log.entries(region_id, truncated + 1, last + 1, None).await {
                    Ok(v) => v.iter().filter_map(|e| decode_entry(e).ok()).collect(),
                    Err(e) => {
                        tracing::warn!(region_id, "handover: cannot read the log: {e}");
                        ctx.push(Event::HandoverFailed { region_id });
                        return;
                    }
                }
            } else {
                Vec::new()
            };
            let r2 = region.clone();
            let data = glommio::executor()
                .spawn_blocking(move || {
                    let mut out = Vec::new();
                    snap.scan_region(&r2.start_key, &r2.end_key, |family, k, v| {
                        out.push((family, Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
                        true
                    })
                    .map(|()| out)
                })
                .await;
            let Ok(data) = data else {
                ctx.push(Event::HandoverFailed { region_id });
                return;
            };
            let h = Handover { state, apply, hard_state, entries, data, from_shard: ctx.shard_id, was_leader };
            if ctx.outbox.send(to, ShardMsg::HandoverIn(Box::new(h))).await.is_err() {
                ctx.push(Event::HandoverFailed { region_id });
            }
        })
        .detach();
    }

    /// A region arrives: write it durably, then create the peer.
    pub(crate) fn on_handover_in(&mut self, h: Handover) {
        let region = h.state.region.clone().unwrap_or_default();
        let region_id = region.id;
        let mut wb = WriteBatch::default();
        self.ctx.engine.clear_region(&mut wb, &region);
        for (family, k, v) in &h.data {
            if let Err(e) = self.ctx.engine.put_region_pair(&mut wb, *family, k, v) {
                tracing::error!(region_id, "handover data refused: {e}");
                let _ = self.ctx.outbox.try_send(h.from_shard, ShardMsg::HandoverFailed { region_id });
                return;
            }
        }
        put_msg(&mut wb, &keys::region_state_key(region_id), &h.state);
        put_msg(&mut wb, &keys::apply_state_key(region_id), &h.apply);
        let ctx = self.ctx.clone();
        glommio::spawn_local(async move {
            let fail = |ctx: &crate::ctx::ShardCtx| {
                let _ = ctx.outbox.try_send(h.from_shard, ShardMsg::HandoverFailed { region_id });
            };
            if let Err(e) = ctx.engine.write_durable(wb).await {
                tracing::error!(region_id, "handover write failed: {e}");
                return fail(&ctx);
            }
            let (truncated, _) = h.apply.truncated_state.as_ref().map_or((0, 0), |t| (t.index, t.term));
            let entries: Vec<_> = h.entries.into_iter().map(encode_entry).collect();
            let written = reset_log(&ctx.log, region_id, truncated, entries, &h.hard_state);
            let durable = match written {
                Ok(d) => d.await.is_ok(),
                Err(_) => false,
            };
            if durable {
                ctx.push(Event::HandoverLanded(Box::new(Landed {
                    state: h.state,
                    apply: h.apply,
                    from_shard: h.from_shard,
                    was_leader: h.was_leader,
                })))
            } else {
                fail(&ctx)
            }
        })
        .detach();
    }

    /// The handed-over region is durable here: start its peer.
    pub(crate) fn on_handover_landed(&mut self, l: Landed) {
        let region = l.state.region.clone().unwrap_or_default();
        let region_id = region.id;
        let store_id = self.ctx.store_id.get();
        let Some(me) = region.peers.iter().find(|p| p.store_id == store_id).cloned() else { return };
        match Peer::new(&self.ctx, region, me, l.apply) {
            Ok(mut peer) => {
                peer.set_handover_seq(l.state.handover_seq);
                if l.was_leader {
                    // A transfer campaign: the followers still count this peer's old self
                    // as their leader, and would ignore an ordinary vote request until their
                    // election timeout.
                    peer.raft_mut().raft.campaign(raft::CAMPAIGN_TRANSFER);
                }
                self.peers.insert(region_id, peer);
                self.touched.insert(region_id);
                self.ctx.count_region(1);
                self.ctx.announce(region_id, Some(self.ctx.shard_id));
                let _ = self.ctx.outbox.try_send(l.from_shard, ShardMsg::HandoverDone { region_id });
                tracing::info!(region_id, shard = self.ctx.shard_id, "region arrived from shard {}", l.from_shard);
            }
            Err(e) => {
                tracing::error!(region_id, "cannot start handed-over peer: {e}");
                let _ = self.ctx.outbox.try_send(l.from_shard, ShardMsg::HandoverFailed { region_id });
            }
        }
    }

    /// The target has the region: drop ours (its data, state and log here).
    pub(crate) fn on_handover_done(&mut self, region_id: u64) {
        self.handovers_in_flight.remove(&region_id);
        let Some(mut peer) = self.peers.remove(&region_id) else { return };
        if peer.is_leader() {
            self.ctx.count_leader(-1);
        }
        self.ctx.count_region(-1);
        let moved = || region_error::server_is_busy("region moved to another shard", 5);
        peer.fail_pending(moved, moved);
        let region = peer.region().clone();
        let mut wb = WriteBatch::default();
        self.ctx.engine.clear_region(&mut wb, &region);
        if let Err(e) = self.ctx.engine.write_or_defer(wb, "handover cleanup") {
            tracing::warn!(region_id, "handover cleanup failed: {e}");
        }
        match self.ctx.log.remove(region_id) {
            Ok(d) => drop(d),
            Err(e) => tracing::warn!(region_id, "handover log cleanup failed: {e}"),
        }
    }

    /// The target could not take the region: resume it here.
    pub(crate) fn on_handover_failed(&mut self, region_id: u64) {
        self.handovers_in_flight.remove(&region_id);
        if let Some(p) = self.peers.get_mut(&region_id) {
            tracing::warn!(region_id, "handover failed; region stays on shard {}", self.ctx.shard_id);
            p.set_lifecycle(Lifecycle::Active);
            self.touched.insert(region_id);
        }
    }

    /// Shard balance: move one region of this shard to `to_shard` — a leader when this shard
    /// leads more regions than the target, a follower otherwise.
    pub(crate) fn on_rebalance(&mut self, to_shard: usize) {
        if !self.handovers_in_flight.is_empty() || self.peers.values().any(|p| p.moving_to().is_some()) {
            return;
        }
        let leaders = &self.ctx.shared.leader_counts;
        let more_leaders_here = leaders[self.ctx.shard_id].load(Ordering::Relaxed)
            > leaders.get(to_shard).map_or(0, |c| c.load(Ordering::Relaxed));
        let candidates = || self.peers.values().filter(|p| p.is_initialized() && p.allows(Work::Rebalance));
        let pick = candidates()
            .find(|p| p.is_leader() == more_leaders_here)
            .or_else(|| candidates().next())
            .map(|p| p.region_id());
        if let Some(region_id) = pick {
            self.ctx.shared.shard_moves.fetch_add(1, Ordering::Relaxed);
            self.on_handover_out(region_id, to_shard);
        }
    }

    /// Coordinator: if a shard has more than one region more than another, asks it to move
    /// one (tick work of shard 0).
    pub(crate) fn balance_shards(&self) {
        let ctx = &self.ctx;
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
            crate::router::send(ctx, src, ShardMsg::Rebalance { to_shard: dst });
        }
    }
}
