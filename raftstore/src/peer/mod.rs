//! A region's peer on its shard: one raft-rs `RawNode`, the proposals waiting for their
//! entries to apply, the reads waiting for a read index, the leader lease, and where the peer
//! is in its life ([`Lifecycle`]). Its fields are private to this module: the rest of the
//! store goes through the methods here, and asks [`Peer::allows`] (or [`Peer::admit`])
//! before starting work on it.
//!
//! * [`ready`]: the Ready loop in raft-rs's documented order, with async persistence;
//!   applying the committed entries dispatches into `crate::operation` (`apply_committed`).
//! * [`propose`]: what every proposal shares (checks, encoding, tracking to its answer).
//! * [`read`]: lease reads and ReadIndex.
//! * [`one_pc`]: the leader's bookkeeping for one-phase commits (read timestamps, commits
//!   in flight).
//! * [`snapshot`]: generating and applying snapshots.
//! * `crate::operation::*`: each command's whole life (propose → apply → result).

pub mod one_pc;
pub mod propose;
pub mod read;
pub mod ready;
pub mod snapshot;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use net::proto::metapb::{self, Region, RegionEpoch};
use net::proto::raft_serverpb::{RaftApplyState, RaftMessage};
use raft::eraftpb::{self, MessageType};
use raft::{RawNode, StateRole};

use crate::cmd::CmdError;
use crate::config::Config;
use crate::ctx::ShardCtx;
use crate::error::Result;
use crate::region_error;
use crate::storage::PeerStorage;
use crate::tracker::Stage;
use one_pc::OnePc;
use propose::{ParkedApply, Proposal};
use read::{Lease, PendingReads};

/// Where a peer is in its life: exactly one at a time. [`Peer::allows`] turns it into what
/// the peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Serving.
    Active,
    /// A split is under way (PD asked for ids, the split proposed): split checks leave the
    /// region alone for a while.
    Splitting {
        /// When the split started.
        since: Instant,
    },
    /// Being moved to shard `to` of this store: it takes no writes; once nothing is in flight
    /// it is `paused` (no raft processing) and its state sent over.
    HandingOver {
        /// The target shard.
        to: usize,
        /// Whether the transfer started.
        paused: bool,
    },
    /// A received snapshot is being written: no further ready until it is durable.
    ApplyingSnapshot,
    /// Applied its own removal from the region: destroyed once its ready is handled.
    Removing,
}

/// What a caller wants a peer to do, for [`Peer::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Step a raft message.
    Step,
    /// Raft processing: ticks, readies, fetched entries.
    Raft,
    /// Take a client write.
    Write,
    /// Serve a read.
    Read,
    /// Propose a command (admin commands, splits, log compaction).
    Propose,
    /// Start maintenance: log GC, a PD operator step.
    Maintain,
    /// Check whether the region should split.
    SplitCheck,
    /// Move to another shard of the store.
    Move,
    /// Be picked by shard balance.
    Rebalance,
}

/// A split that has not applied after this long no longer holds split checks back.
const SPLIT_STALE: Duration = Duration::from_secs(10);

/// A region's peer.
pub struct Peer {
    meta: metapb::Peer,
    raw_node: RawNode<PeerStorage>,
    /// Proposals in index order.
    proposals: VecDeque<Proposal>,
    /// Reads waiting for a read index or for apply.
    reads: PendingReads,
    lease: Lease,
    /// A log compaction waiting for RocksDB to make its apply state durable.
    pending_log_compact: Option<u64>,
    lifecycle: Lifecycle,
    /// Role and leader at the last ready (to notice changes).
    last_role: StateRole,
    last_leader: u64,
    /// A region heartbeat should go to PD now.
    heartbeat_due: bool,
    /// Approximate size and keys (from the split check).
    approximate: (u64, u64),
    /// The handover sequence of this region's state on this shard.
    handover_seq: u64,
    /// Readies handed to the log engine and not yet durable.
    unpersisted: u64,
    /// An applied batch whose write waits out a RocksDB write stall.
    parked_apply: Option<ParkedApply>,
    /// Peers learned from messages: an uninitialized peer does not know its region's peers
    /// yet but must answer the leader.
    peer_cache: HashMap<u64, metapb::Peer>,
    /// One-phase commit bookkeeping (leader only).
    one_pc: OnePc,
}

/// Bridges raft-rs's slog logging to `tracing` (at debug level: raft is chatty).
struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> std::result::Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "raft", "{}", record.msg()),
            slog::Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            _ => tracing::trace!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}

fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

fn raft_config(cfg: &Config, id: u64, applied: u64) -> raft::Config {
    raft::Config {
        id,
        election_tick: cfg.raft.election_ticks,
        heartbeat_tick: cfg.raft.heartbeat_ticks,
        applied,
        max_size_per_msg: cfg.raft.max_size_per_msg,
        max_inflight_msgs: cfg.raft.max_inflight_msgs,
        check_quorum: true,
        pre_vote: true,
        read_only_option: raft::ReadOnlyOption::Safe,
        ..Default::default()
    }
}

impl Peer {
    /// A peer of `region` with the given stored apply state.
    pub fn new(ctx: &ShardCtx, region: Region, meta: metapb::Peer, apply: RaftApplyState) -> Result<Peer> {
        let applied = apply.applied_index;
        let storage = PeerStorage::new(ctx.log.clone(), region, apply);
        let raw_node = RawNode::new(&raft_config(&ctx.cfg, meta.id, applied), storage, &raft_logger())?;
        let lease = Lease::new(ctx.cfg.base_tick() * ctx.cfg.raft.lease_ticks as u32);
        Ok(Peer {
            meta,
            raw_node,
            proposals: VecDeque::new(),
            reads: PendingReads::default(),
            lease,
            pending_log_compact: None,
            lifecycle: Lifecycle::Active,
            last_role: StateRole::Follower,
            last_leader: 0,
            heartbeat_due: true,
            approximate: (0, 0),
            handover_seq: 0,
            unpersisted: 0,
            parked_apply: None,
            peer_cache: HashMap::new(),
            one_pc: OnePc::default(),
        })
    }

    /// Whether the peer's lifecycle permits `work` now — the one admission check.
    ///
    /// | work | Active | Splitting | HandingOver | paused | ApplyingSnapshot | Removing |
    /// |---|---|---|---|---|---|---|
    /// | Step, Read, Propose | ✓ | ✓ | ✓ | — | ✓ | ✓ |
    /// | Raft | ✓ | ✓ | ✓ | — | — | ✓ |
    /// | Write, Maintain | ✓ | ✓ | — | — | ✓ | ✓ |
    /// | SplitCheck | ✓ | stale | — | — | ✓ | ✓ |
    /// | Move | ✓ | ✓ | — | — | — | — |
    /// | Rebalance | ✓ | — | — | — | — | — |
    ///
    /// While an applied batch waits out a RocksDB write stall ([`ParkedApply`]) there is no
    /// Raft work either. (Leadership, the epoch and the keys are checked where they matter.)
    pub fn allows(&self, work: Work) -> bool {
        use Lifecycle::*;
        if work == Work::Raft && self.parked_apply.is_some() {
            return false;
        }
        match (self.lifecycle, work) {
            (HandingOver { paused: true, .. }, _) => false,
            (Active, _) => true,
            (_, Work::Rebalance) => false,
            (Splitting { .. }, Work::Move) => true,
            (_, Work::Move) => false,
            (HandingOver { .. }, Work::Write | Work::Maintain | Work::SplitCheck) => false,
            (ApplyingSnapshot, Work::Raft) => false,
            (Splitting { since }, Work::SplitCheck) => since.elapsed() >= SPLIT_STALE,
            _ => true,
        }
    }

    /// [`Peer::allows`] as the answer to a client: a retryable `ServerIsBusy` when the peer
    /// cannot take `work` now.
    pub fn admit(&self, work: Work) -> std::result::Result<(), CmdError> {
        if self.allows(work) {
            Ok(())
        } else {
            Err(region_error::server_is_busy("region is moving between shards", 20))
        }
    }

    /// Where the peer is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// Moves the peer to `next` in its life.
    pub fn set_lifecycle(&mut self, next: Lifecycle) {
        self.lifecycle = next;
    }

    /// The shard this region is being moved to, if it is.
    pub fn moving_to(&self) -> Option<usize> {
        match self.lifecycle {
            Lifecycle::HandingOver { to, .. } => Some(to),
            _ => None,
        }
    }

    /// This peer.
    pub fn meta(&self) -> &metapb::Peer {
        &self.meta
    }

    /// This peer's id.
    pub fn peer_id(&self) -> u64 {
        self.meta.id
    }

    /// The raft state machine.
    pub fn raft(&self) -> &RawNode<PeerStorage> {
        &self.raw_node
    }

    /// The raft state machine, to drive.
    pub fn raft_mut(&mut self) -> &mut RawNode<PeerStorage> {
        &mut self.raw_node
    }

    /// The region id.
    pub fn region_id(&self) -> u64 {
        self.region().id
    }

    /// The region.
    pub fn region(&self) -> &Region {
        self.raw_node.store().region()
    }

    /// The region's epoch.
    pub fn epoch(&self) -> RegionEpoch {
        self.region().region_epoch.clone().unwrap_or_default()
    }

    /// Whether this peer leads its region.
    pub fn is_leader(&self) -> bool {
        self.raw_node.raft.state == StateRole::Leader
    }

    /// The leader's id (0 = unknown).
    pub fn leader_id(&self) -> u64 {
        self.raw_node.raft.leader_id
    }

    /// The leader's peer metadata, if known.
    pub fn leader(&self) -> Option<metapb::Peer> {
        let id = self.leader_id();
        self.region().peers.iter().find(|p| p.id == id).cloned()
    }

    /// The peer with id `id` in the region (or learned from its messages).
    pub fn peer_by_id(&self, id: u64) -> Option<&metapb::Peer> {
        self.region().peers.iter().find(|p| p.id == id).or_else(|| self.peer_cache.get(&id))
    }

    /// Remembers the sender of a message.
    pub fn learn_peer(&mut self, p: &metapb::Peer) {
        if p.id != 0 && !self.peer_cache.contains_key(&p.id) {
            self.peer_cache.insert(p.id, p.clone());
        }
    }

    /// Whether the region has data (not waiting for its first snapshot).
    pub fn is_initialized(&self) -> bool {
        self.raw_node.store().is_initialized()
    }

    /// Ends the leader lease now (leadership may move).
    pub fn expire_lease(&mut self) {
        self.lease.expire();
    }

    /// The log compaction waiting for a flush, if any.
    pub fn pending_log_compact(&self) -> Option<u64> {
        self.pending_log_compact
    }

    /// Sets (or clears) the log compaction waiting for a flush.
    pub fn set_pending_log_compact(&mut self, index: Option<u64>) {
        self.pending_log_compact = index;
    }

    /// Asks for a region heartbeat to PD at the next occasion.
    pub fn schedule_heartbeat(&mut self) {
        self.heartbeat_due = true;
    }

    /// Whether a region heartbeat is due (and clears it).
    pub fn take_heartbeat_due(&mut self) -> bool {
        std::mem::take(&mut self.heartbeat_due)
    }

    /// Approximate size and keys, from the last split check.
    pub fn approximate(&self) -> (u64, u64) {
        self.approximate
    }

    /// Records the split check's measurement.
    pub fn set_approximate(&mut self, size_and_keys: (u64, u64)) {
        self.approximate = size_and_keys;
    }

    /// The handover sequence of this region's state on this shard.
    pub fn handover_seq(&self) -> u64 {
        self.handover_seq
    }

    /// Sets the handover sequence (the peer was loaded or handed over).
    pub fn set_handover_seq(&mut self, seq: u64) {
        self.handover_seq = seq;
    }

    /// Whether nothing of the peer is in flight: no proposal, no append waiting for the
    /// disk, no ready (a handover may start).
    pub fn is_quiet(&self) -> bool {
        self.unpersisted == 0 && self.proposals.is_empty() && self.parked_apply.is_none() && !self.raw_node.has_ready()
    }

    /// Steps a message from the network.
    pub fn step(&mut self, msg: eraftpb::Message) -> Result<()> {
        if !self.allows(Work::Step) {
            return Ok(());
        }
        if msg.msg_type == MessageType::MsgTransferLeader as i32 && self.is_leader() {
            // A follower asked for leadership: the lease must not outlive our leadership.
            self.lease.expire();
        }
        self.raw_node.step(msg)?;
        Ok(())
    }

    /// Wraps raft messages for the wire and hands them to the transport.
    pub fn send(&self, ctx: &ShardCtx, msgs: Vec<eraftpb::Message>) {
        let region = self.region();
        for m in msgs {
            let Some(to) = self.peer_by_id(m.to).cloned() else {
                tracing::debug!(region_id = region.id, to = m.to, "message to a peer not in the region dropped");
                continue;
            };
            let store = to.store_id;
            let msg = RaftMessage {
                region_id: region.id,
                from_peer: Some(self.meta.clone()),
                to_peer: Some(to),
                message: Some(m),
                region_epoch: region.region_epoch.clone(),
                is_tombstone: false,
                start_key: region.start_key.clone(),
                end_key: region.end_key.clone(),
            };
            ctx.transport.send(store, msg);
        }
    }

    /// Where the entry of a proposal at `index` is: in the log only, durable here, or
    /// committed (for the slow-request log).
    pub fn proposal_stage(&self, index: u64) -> Stage {
        let log = &self.raw_node.raft.raft_log;
        if index <= log.committed {
            Stage::Committed { index }
        } else if index <= log.persisted {
            Stage::Persisted { index }
        } else {
            Stage::Proposed { index }
        }
    }

    /// Answers every waiting proposal with `proposal_err` and every waiting read with
    /// `read_err` (the peer is going away). A proposal's entry may still be committed by the
    /// others, so its error must not invite a retry; a read's should.
    pub fn fail_pending(&mut self, proposal_err: impl Fn() -> CmdError, read_err: impl Fn() -> CmdError) {
        for p in self.proposals.drain(..) {
            p.reply.send(Err(proposal_err()));
        }
        self.reads.fail_all(&read_err);
    }

    /// Answers every waiting read with `err` (they will not complete here).
    pub fn fail_reads(&mut self, err: impl Fn() -> CmdError) {
        self.reads.fail_all(&err);
    }
}
