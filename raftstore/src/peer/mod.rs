//! A region's peer on its shard: one raft-rs `RawNode`, the proposals waiting for their
//! entries to apply, the reads waiting for a read index, and the leader lease.
//!
//! * [`ready`]: the Ready loop in raft-rs's documented order, with async persistence.
//! * [`apply`]: applying committed entries into the shard's RocksDB.
//! * [`read`]: lease reads and ReadIndex.
//! * [`snapshot`]: generating and applying snapshots.
//! * `crate::operation::*`: each command's whole life (propose → apply → result).

pub mod apply;
pub mod read;
pub mod ready;
pub mod snapshot;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use core_shard::oneshot;
use net::proto::metapb::{self, Region, RegionEpoch};
use net::proto::raft_serverpb::{RaftApplyState, RaftMessage};
use raft::eraftpb::{self, MessageType};
use raft::{RawNode, StateRole};

use crate::config::Config;
use crate::error::Result;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::CmdResult;
use crate::storage::PeerStorage;
use read::{Lease, PendingReads};

/// A proposal waiting for its entry to be applied.
pub struct Proposal {
    /// Index of its entry.
    pub index: u64,
    /// Term it was proposed in.
    pub term: u64,
    /// When it was proposed (commit renews the lease from here).
    pub at: Instant,
    /// Where the result goes.
    pub reply: oneshot::Sender<CmdResult>,
}

/// A region's peer.
pub struct Peer {
    /// This peer.
    pub meta: metapb::Peer,
    /// The raft state machine.
    pub raw_node: RawNode<PeerStorage>,
    /// Proposals in index order.
    pub proposals: VecDeque<Proposal>,
    /// Reads waiting for a read index or for apply.
    pub reads: PendingReads,
    /// The leader lease.
    pub lease: Lease,
    /// A log compaction waiting for RocksDB to make its apply state durable.
    pub pending_log_compact: Option<u64>,
    /// Being handed over to another shard: no raft processing.
    pub paused: bool,
    /// Removed from the region: destroy once its ready is handled.
    pub pending_remove: bool,
    /// Role at the last ready (to notice changes).
    pub last_role: StateRole,
    /// Leader known at the last ready.
    pub last_leader: u64,
    /// A region heartbeat should go to PD now.
    pub heartbeat_due: bool,
    /// Approximate size and keys (from the split check).
    pub approximate: (u64, u64),
    /// Since when a split is in progress (asked PD, proposing); stale after a while.
    pub splitting: Option<std::time::Instant>,
    /// The handover sequence of this region's state on this shard.
    pub handover_seq: u64,
    /// A received snapshot is being written: no further ready until it is.
    pub applying_snapshot: bool,
    /// Readies handed to the log engine and not yet durable.
    pub unpersisted: u64,
    /// The shard this region is being handed to (proposals refused meanwhile).
    pub handover_to: Option<usize>,
    /// Peers learned from messages: an uninitialized peer does not know its region's peers
    /// yet but must answer the leader.
    pub peer_cache: HashMap<u64, metapb::Peer>,
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
            paused: false,
            pending_remove: false,
            last_role: StateRole::Follower,
            last_leader: 0,
            heartbeat_due: true,
            approximate: (0, 0),
            splitting: None,
            handover_seq: 0,
            applying_snapshot: false,
            unpersisted: 0,
            handover_to: None,
            peer_cache: HashMap::new(),
        })
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

    /// Steps a message from the network.
    pub fn step(&mut self, msg: eraftpb::Message) -> Result<()> {
        if self.paused {
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
    pub fn proposal_stage(&self, index: u64) -> crate::tracker::Stage {
        use crate::tracker::Stage;
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
    pub fn fail_pending(
        &mut self,
        proposal_err: impl Fn() -> crate::shard::msg::CmdError,
        read_err: impl Fn() -> crate::shard::msg::CmdError,
    ) {
        for p in self.proposals.drain(..) {
            p.reply.send(Err(proposal_err()));
        }
        self.reads.fail_all(&read_err);
    }
}
