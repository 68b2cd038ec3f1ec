//! The Ready loop, in raft-rs's documented order, with asynchronous persistence:
//!
//! 1. send messages (a leader's appends go out before its own persistence: raft thesis 10.2.1);
//! 2. a snapshot is applied in the background (its data written durably, then the log reset);
//!    the peer handles no further ready until that is done;
//! 3. apply committed entries (they are persisted already);
//! 4. hand entries and the hard state to the shard's log engine — they are readable at once —
//!    and `advance_append_async`;
//! 5. when the log engine says they are durable (`Event::Persisted`), `on_persist_ready` and
//!    send the messages that had to wait for persistence (votes, append responses).

use std::rc::Rc;

use core_shard::log::HardState as LogHardState;
use raft::eraftpb::{self, HardState};
use raft::StateRole;

use super::{Lifecycle, Peer, Work};
use crate::cmd::ApplyEffect;
use crate::ctx::ShardCtx;
use crate::msg::Event;
use crate::storage::encode_entry;

fn to_log_hs(hs: &HardState) -> LogHardState {
    LogHardState { term: hs.term, vote: hs.vote, commit: hs.commit }
}

impl Peer {
    /// Handles one ready if there is one; returns side effects of applied entries.
    pub fn handle_ready(&mut self, ctx: &Rc<ShardCtx>) -> Vec<ApplyEffect> {
        if !self.allows(Work::Raft) || !self.raw_node.has_ready() {
            return Vec::new();
        }
        let mut rd = self.raw_node.ready();
        if let Some(ss) = rd.ss() {
            let (role, leader) = (ss.raft_state, ss.leader_id);
            self.on_soft_state(ctx, role, leader);
        }
        if !rd.messages().is_empty() {
            let msgs = rd.take_messages();
            self.send(ctx, msgs);
        }
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let committed = rd.take_committed_entries();
        let effects = if committed.is_empty() { Vec::new() } else { self.apply_committed(ctx, committed) };
        if self.lifecycle == Lifecycle::Removing {
            // This peer applied its own removal: it is destroyed with these effects. Going on
            // would hand raft-rs persistence news about a node no longer in its configuration
            // (a leader removed by an earlier leader's proposal would panic in raft-rs).
            return effects;
        }
        let read_states = rd.take_read_states();
        let entries = rd.take_entries();
        let hs = rd.hs().cloned();
        let persisted = rd.take_persisted_messages();
        let number = rd.number();
        self.raw_node.advance_append_async(rd);
        let applied = self.raw_node.store().applied_index();
        self.raw_node.advance_apply_to(applied);
        if !read_states.is_empty() {
            self.on_read_states(ctx, read_states);
        } else if !self.reads.is_empty() {
            self.run_ready_reads(ctx);
        }
        if let Some(snap) = snapshot {
            self.start_apply_snapshot(ctx, snap, entries, number, persisted);
            return effects;
        }
        if entries.is_empty() && hs.is_none() {
            self.raw_node.on_persist_ready(number);
            self.send(ctx, persisted);
            return effects;
        }
        self.persist(ctx, entries, hs, number, persisted);
        effects
    }

    /// Appends to the shard's log; the durability event comes back through the raft loop.
    fn persist(
        &mut self,
        ctx: &Rc<ShardCtx>,
        entries: Vec<eraftpb::Entry>,
        hs: Option<HardState>,
        number: u64,
        msgs: Vec<eraftpb::Message>,
    ) {
        let region_id = self.region_id();
        let log_entries = entries.into_iter().map(encode_entry).collect();
        match ctx.log.append(region_id, log_entries, hs.as_ref().map(to_log_hs)) {
            Ok(durable) => {
                self.unpersisted += 1;
                let ctx2 = ctx.clone();
                let peer_id = self.meta.id;
                glommio::spawn_local(async move {
                    match durable.await {
                        Ok(()) => ctx2.push(Event::Persisted { region_id, peer_id, number, msgs }),
                        Err(e) => tracing::error!(region_id, "raft log append failed: {e}"),
                    }
                })
                .detach();
            }
            // The log engine stopped (disk failure): this peer can no longer persist; it
            // stays as it is and the store must be restarted.
            Err(e) => tracing::error!(region_id, "raft log refused an append: {e}"),
        }
    }

    /// Starts the asynchronous entry reads raft asked for; raft's retry then finds them in
    /// the log engine's cache.
    pub fn push_fetches(&self, ctx: &Rc<ShardCtx>) {
        let region_id = self.region_id();
        for f in self.raw_node.store().take_fetches() {
            let ctx = ctx.clone();
            glommio::spawn_local(async move {
                if let Err(e) = ctx.log.entries(region_id, f.low, f.high, f.max_size).await {
                    tracing::debug!(region_id, "entry fetch failed: {e}");
                }
                ctx.push(Event::EntriesFetched { region_id, ctx: f.ctx });
            })
            .detach();
        }
    }

    /// The appends of ready `number` are durable.
    pub fn on_persisted(&mut self, ctx: &Rc<ShardCtx>, number: u64, msgs: Vec<eraftpb::Message>) {
        self.unpersisted = self.unpersisted.saturating_sub(1);
        self.raw_node.on_persist_ready(number);
        self.send(ctx, msgs);
    }

    fn on_soft_state(&mut self, ctx: &ShardCtx, role: StateRole, leader: u64) {
        let was_leader = self.last_role == StateRole::Leader;
        let is_leader = role == StateRole::Leader;
        if is_leader && !was_leader {
            ctx.count_leader(1);
            self.lease.expire();
            self.heartbeat_due = true;
            tracing::info!(
                region_id = self.region_id(),
                peer = self.meta.id,
                term = self.raw_node.raft.term,
                "became leader"
            );
        } else if was_leader && !is_leader {
            ctx.count_leader(-1);
            tracing::info!(
                region_id = self.region_id(),
                peer = self.meta.id,
                term = self.raw_node.raft.term,
                new_leader = leader,
                "stepped down as leader"
            );
            self.on_leadership_lost();
        }
        // With pre-vote, a follower that stops hearing from its leader becomes a pre-candidate;
        // a leader transfer (`MsgTimeoutNow`) makes it a candidate directly, and a new region's
        // first election has no leader to lose. Only the first is worth a warning: it means
        // heartbeats stopped arriving (a partition, a stalled shard, an overloaded machine).
        if role == StateRole::PreCandidate && self.last_role == StateRole::Follower && self.last_leader != 0 {
            tracing::warn!(
                region_id = self.region_id(),
                peer = self.meta.id,
                term = self.raw_node.raft.term,
                last_leader = self.last_leader,
                "election timeout: leader not heard from, campaigning"
            );
        }
        if leader != self.last_leader && is_leader {
            self.heartbeat_due = true;
        }
        self.last_role = role;
        self.last_leader = leader;
    }
}
