//! One file per command, each holding its whole life — propose (checks, encoding) → apply
//! (epoch check again, state change) → result (reply, side effects) — as `impl` blocks on
//! the peer or the shard where the code needs them (the raftstore-v2 layout):
//!
//! | file | command |
//! |---|---|
//! | [`write`] | put, delete, delete range, compare-and-swap |
//! | [`split`] | split check, ids from PD, propose, apply, the new region's peer and placement |
//! | [`handover`] | moving a region to another shard of the store, and shard balance |
//! | [`conf_change`] | add a voter or learner, promote, remove |
//! | [`transfer_leader`] | leadership transfer (not replicated) |
//! | [`compact_log`] | raft log GC, with the RocksDB flush it waits for |
//!
//! This file applies committed entries: every entry of one ready goes into one RocksDB write
//! batch together with the new apply state, so after a crash RocksDB holds either none or all
//! of them and the raft log replays the rest. Results reach their proposals after the batch is
//! written. Side effects that need the shard (create a split's new peer, destroy a removed
//! peer) go back to the raft loop as [`ApplyEffect`]s. When RocksDB refuses the batch during a
//! write stall, it is written on the blocking pool and the peer waits, its results parked
//! (`ParkedApply`), so the executor never does. What every proposal shares (checks, header,
//! tracking to its answer) is in `crate::peer::propose`.
//!
//! **Adding a command**: a request type in `net/proto` and a kind in `cmd::AdminCmd` (or a
//! `CmdType` for a write); a file here with its `propose_*` (call `check_proposal`, encode,
//! `propose_cmd`), its `apply_*` (check the epoch again, write into the batch) and its result;
//! a dispatch line in [`Peer::apply_committed`]'s admin match; a service function in
//! `service/` and an arm in its dispatch; a test of its life in `tests/`.

pub mod compact_log;
pub mod conf_change;
pub mod gc;
pub mod handover;
pub mod split;
pub mod transfer_leader;
pub mod write;

use std::rc::Rc;

use net::proto::raft_cmdpb::{AdminCmdType, RaftCmdRequest};
use net::proto::raft_serverpb::{PeerState, RegionLocalState};
use prost::Message;
use raft::eraftpb::{Entry, EntryType};
use rocksdb::WriteBatch;

use crate::cmd::{ApplyEffect, CmdError, CmdResult};
use crate::ctx::ShardCtx;
use crate::engine::{put_msg, WriteError};
use crate::keys;
use crate::msg::Event;
use crate::peer::propose::ParkedApply;
use crate::peer::{Lifecycle, Peer};

impl Peer {
    /// Applies committed entries; returns side effects for the raft loop.
    pub fn apply_committed(&mut self, ctx: &Rc<ShardCtx>, entries: Vec<Entry>) -> Vec<ApplyEffect> {
        let mut wb = WriteBatch::default();
        let mut results: Vec<(u64, u64, Option<CmdResult>)> = Vec::with_capacity(entries.len());
        let mut effects = Vec::new();
        let mut staged = write::Staged::default();
        let mut region_changed = false;
        for e in entries {
            if self.lifecycle() == Lifecycle::Removing {
                break;
            }
            let result = match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => None,
                EntryType::EntryNormal => {
                    Some(self.apply_entry(ctx, &mut wb, &mut staged, &e, &mut effects, &mut region_changed))
                }
                EntryType::EntryConfChange => {
                    region_changed = true;
                    Some(self.apply_conf_change(&e, &mut effects))
                }
                EntryType::EntryConfChangeV2 => Some(Err(CmdError::Other("joint consensus is not supported".into()))),
            };
            self.raft_mut().mut_store().apply_state_mut().applied_index = e.index;
            results.push((e.index, e.term, result));
        }
        let region_id = self.region_id();
        put_msg(&mut wb, &keys::apply_state_key(region_id), self.raft().store().apply_state());
        if region_changed {
            self.persist_region_state(&mut wb);
            self.schedule_heartbeat();
        }
        core_shard::crash_point!("apply::write::before");
        match ctx.engine.write(wb) {
            Ok(()) => {}
            Err(WriteError::Stalled(wb)) => {
                self.park_apply(ParkedApply { results, effects });
                write_parked(ctx, region_id, self.peer_id(), wb);
                return Vec::new();
            }
            Err(WriteError::Failed(e)) => {
                // The state machine cannot move on; the raft log still has everything, so a
                // restart replays it. Keep the proposals unanswered rather than lie (the
                // request bound answers them as undetermined).
                tracing::error!(region_id, "apply write failed: {e}");
                return effects;
            }
        }
        staged.apply_to_cache(ctx);
        core_shard::crash_point!("apply::write::after");
        for (index, term, result) in results {
            self.finish_proposals(index, term, result);
        }
        effects
    }

    /// The parked batch (see [`ParkedApply`]) is written: answer its proposals and return its
    /// effects for the raft loop.
    pub fn finish_parked_apply(&mut self) -> Vec<ApplyEffect> {
        let Some(parked) = self.take_parked_apply() else { return Vec::new() };
        core_shard::crash_point!("apply::write::after");
        for (index, term, result) in parked.results {
            self.finish_proposals(index, term, result);
        }
        parked.effects
    }

    /// Writes this peer's region state (after a membership change or split).
    pub fn persist_region_state(&self, wb: &mut WriteBatch) {
        let state = RegionLocalState {
            state: PeerState::Normal as i32,
            region: Some(self.region().clone()),
            handover_seq: self.handover_seq(),
        };
        put_msg(wb, &keys::region_state_key(self.region_id()), &state);
    }

    /// Applies one normal entry: an admin command or a write.
    fn apply_entry(
        &mut self,
        ctx: &ShardCtx,
        wb: &mut WriteBatch,
        staged: &mut write::Staged,
        e: &Entry,
        effects: &mut Vec<ApplyEffect>,
        region_changed: &mut bool,
    ) -> CmdResult {
        let cmd = RaftCmdRequest::decode(e.data.as_slice())
            .map_err(|err| CmdError::Other(format!("entry {} does not decode: {err}", e.index)))?;
        let Some(admin) = &cmd.admin_request else { return self.apply_write(ctx, wb, staged, &cmd) };
        match AdminCmdType::from_i32(admin.cmd_type) {
            Some(AdminCmdType::CompactLog) => self.apply_compact_log(admin),
            Some(AdminCmdType::Split) => {
                *region_changed = true;
                self.apply_split(wb, &cmd, effects)
            }
            _ => Err(CmdError::Other(format!("admin command {} is not replicated", admin.cmd_type))),
        }
    }
}

/// Writes a batch RocksDB refused during a write stall on the blocking pool, then tells the
/// raft loop (`Event::ApplyWritten`). A failure leaves the batch parked: like a failed write on
/// the executor, its proposals are left to the request bound and a restart replays the log.
fn write_parked(ctx: &Rc<ShardCtx>, region_id: u64, peer_id: u64, wb: WriteBatch) {
    tracing::info!(region_id, "RocksDB write stall: the apply batch is written on the blocking pool");
    let ctx = ctx.clone();
    glommio::spawn_local(async move {
        match ctx.engine.write_stalled(wb).await {
            Ok(()) => ctx.push(Event::ApplyWritten { region_id, peer_id }),
            Err(e) => tracing::error!(region_id, "apply write failed after a stall: {e}"),
        }
    })
    .detach();
}
