//! The messages of a shard: events its raft loop handles, and what shards send each other.

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb;
use net::proto::raft_serverpb::{RaftApplyState, RaftMessage, RegionLocalState};
use raft::eraftpb::{self, Snapshot};
use raft::GetEntriesContext;

use crate::cmd::{AdminCmd, CmdError, CmdResult, ReadRequest, ReadResult, RegionDebug};
use crate::request::Request;
use crate::tracker::Ticket;

/// A region handed from one shard to another of the same store.
#[derive(Debug)]
pub struct Handover {
    /// The region state (with the new handover sequence).
    pub state: RegionLocalState,
    /// The apply state.
    pub apply: RaftApplyState,
    /// The raft hard state.
    pub hard_state: eraftpb::HardState,
    /// Every live raft log entry.
    pub entries: Vec<eraftpb::Entry>,
    /// Every pair of the region's data: family number (`engine::RAW_FAMILY` or a
    /// transactional family), key within the family, value.
    pub data: Vec<(u32, Bytes, Bytes)>,
    /// The shard that hands it over.
    pub from_shard: usize,
    /// The peer led the region there (then it campaigns at once where it lands).
    pub was_leader: bool,
}

/// A handed-over region whose state is durable on this shard.
#[derive(Debug)]
pub struct Landed {
    /// The region state.
    pub state: RegionLocalState,
    /// The apply state.
    pub apply: RaftApplyState,
    /// The shard it came from.
    pub from_shard: usize,
    /// The peer led the region there.
    pub was_leader: bool,
}

/// What the raft loop of a shard handles.
pub enum Event {
    /// A raft message for a region on this shard.
    Raft(Box<RaftMessage>),
    /// A write to replicate.
    Write {
        /// Region.
        region_id: u64,
        /// The client's epoch.
        epoch: RegionEpoch,
        /// Requests.
        requests: Vec<raft_cmdpb::Request>,
        /// Where the result goes.
        reply: oneshot::Sender<CmdResult>,
        /// Its place in the shard's request tracker.
        ticket: Ticket,
    },
    /// A read.
    Read {
        /// Region.
        region_id: u64,
        /// The client's epoch.
        epoch: RegionEpoch,
        /// The read.
        req: ReadRequest,
        /// Where the result goes.
        reply: oneshot::Sender<ReadResult>,
        /// Its place in the shard's request tracker.
        ticket: Ticket,
    },
    /// An operator command.
    Admin {
        /// Region.
        region_id: u64,
        /// The client's epoch.
        epoch: RegionEpoch,
        /// The command.
        cmd: AdminCmd,
        /// Where the result goes.
        reply: oneshot::Sender<CmdResult>,
        /// Its place in the shard's request tracker.
        ticket: Ticket,
    },
    /// A debug read.
    Debug {
        /// Region.
        region_id: u64,
        /// Where the result goes.
        reply: oneshot::Sender<Result<RegionDebug, CmdError>>,
    },
    /// The raft clock ticked.
    Tick,
    /// A ready's appends are durable.
    Persisted {
        /// Region.
        region_id: u64,
        /// Peer id (the peer may have been replaced meanwhile).
        peer_id: u64,
        /// Ready number.
        number: u64,
        /// Messages to send now.
        msgs: Vec<eraftpb::Message>,
    },
    /// An apply batch that met a RocksDB write stall is written.
    ApplyWritten {
        /// Region.
        region_id: u64,
        /// Peer id (the peer may have been replaced meanwhile).
        peer_id: u64,
    },
    /// Entries raft asked for are in the log cache now.
    EntriesFetched {
        /// Region.
        region_id: u64,
        /// raft's context.
        ctx: GetEntriesContext,
    },
    /// A snapshot finished generating.
    SnapshotGenerated {
        /// Region.
        region_id: u64,
        /// The snapshot.
        snap: Result<Box<Snapshot>, String>,
    },
    /// A snapshot transfer to `to` ended.
    SnapshotSent {
        /// Region.
        region_id: u64,
        /// The receiving peer.
        to: u64,
        /// Whether every chunk was delivered.
        ok: bool,
    },
    /// A received snapshot's data is durable.
    SnapshotApplied {
        /// Region.
        region_id: u64,
        /// Peer id.
        peer_id: u64,
        /// Ready number.
        number: u64,
        /// Messages to send now.
        msgs: Vec<eraftpb::Message>,
    },
    /// The shard's RocksDB flushed: applied indexes up to these are durable.
    Flushed {
        /// `(region, applied index at flush start)`.
        applied: Vec<(u64, u64)>,
    },
    /// A TSO timestamp fetched for a new leader's one-phase commits
    /// (`crate::peer::one_pc`).
    MaxTsSynced {
        /// Region.
        region_id: u64,
        /// The term it was fetched for.
        term: u64,
        /// The timestamp (`None`: the fetch failed).
        ts: Option<u64>,
    },
    /// A GC pass over part of a region found keys with versions to remove.
    GcBatch {
        /// Region.
        region_id: u64,
        /// Epoch at scan time.
        epoch: RegionEpoch,
        /// The safe point the keys were checked against.
        safe_point: u64,
        /// Keys with something to remove (may be empty).
        keys: Vec<Vec<u8>>,
        /// Where the next pass starts (`None`: the region was walked to its end).
        next: Option<Vec<u8>>,
    },
    /// Split check results: split `region` at `key`.
    SplitCheckResult {
        /// Region.
        region_id: u64,
        /// Epoch at check time.
        epoch: RegionEpoch,
        /// Split key, if the region is too big.
        split_key: Option<Bytes>,
        /// Approximate size.
        size: u64,
        /// Approximate keys.
        keys: u64,
    },
    /// PD gave ids for a split.
    SplitIds {
        /// Region.
        region_id: u64,
        /// Epoch when asked.
        epoch: RegionEpoch,
        /// Split key.
        split_key: Bytes,
        /// New region id.
        new_region_id: u64,
        /// New peer ids.
        new_peer_ids: Vec<u64>,
        /// The caller waiting (an operator split), if any.
        reply: Option<oneshot::Sender<CmdResult>>,
    },
    /// Hand a region over to another shard (from the placement coordinator).
    HandoverOut {
        /// Region.
        region_id: u64,
        /// Target shard.
        to_shard: usize,
    },
    /// A region arrives from another shard.
    HandoverIn(Box<Handover>),
    /// A region from another shard is durable here: create its peer.
    HandoverLanded(Box<Landed>),
    /// The target shard has the region durably: drop ours.
    HandoverDone {
        /// Region.
        region_id: u64,
    },
    /// The target shard failed to take the region: resume ours.
    HandoverFailed {
        /// Region.
        region_id: u64,
    },
    /// A destroyed peer's tombstone is durable and its log dropped.
    Destroyed {
        /// Region.
        region_id: u64,
    },
    /// A step of a PD operator for a region this shard leads.
    Operator(Box<net::proto::pdpb::OperatorStep>),
    /// Shard balance: move one region of this shard to `to_shard`.
    Rebalance {
        /// Target shard.
        to_shard: usize,
    },
}

/// What shards send each other through their mailboxes.
pub enum ShardMsg {
    /// A raft message for a region on the destination shard.
    Raft(Box<RaftMessage>),
    /// Hand a region over to another shard (from the placement coordinator).
    HandoverOut {
        /// Region.
        region_id: u64,
        /// Target shard.
        to_shard: usize,
    },
    /// A region arrives from another shard.
    HandoverIn(Box<Handover>),
    /// The target shard has the region durably.
    HandoverDone {
        /// Region.
        region_id: u64,
    },
    /// The target shard could not take the region.
    HandoverFailed {
        /// Region.
        region_id: u64,
    },
    /// A client request that reached the wrong shard: serve it and send the reply back.
    Forward {
        /// Origin shard.
        from: usize,
        /// Correlation id at the origin.
        id: u64,
        /// The request, decoded.
        request: Box<Request>,
    },
    /// The reply of a forwarded request.
    ForwardReply {
        /// Correlation id.
        id: u64,
        /// The encoded response (with its shard hint), or a status.
        result: Result<Bytes, net::proto::rpcpb::Status>,
    },
    /// Directory change: `region` now lives on `shard` (`None`: gone from the store).
    Directory {
        /// Region.
        region_id: u64,
        /// Its shard.
        shard: Option<usize>,
    },
    /// A step of a PD operator for a region the destination shard hosts.
    Operator(Box<net::proto::pdpb::OperatorStep>),
    /// Shard balance: move one region of the destination shard to `to_shard`.
    Rebalance {
        /// Target shard.
        to_shard: usize,
    },
    /// To the coordinator (shard 0): the key range of an initialized region on the store
    /// (`None`: the region left the store).
    Range {
        /// Region.
        region_id: u64,
        /// `(start, end, version)`.
        range: Option<crate::directory::Range>,
    },
    /// To the coordinator (shard 0): place a region created from a raft message.
    Place(Box<RaftMessage>),
    /// To the coordinator: a split created `region` on `shard`; rebalance if useful.
    Created {
        /// Region.
        region_id: u64,
        /// Shard.
        shard: usize,
    },
    /// Start-up: the regions a shard found on disk, with their handover sequence.
    Loaded {
        /// Shard.
        shard: usize,
        /// `(region, handover_seq)`.
        regions: Vec<(u64, u64)>,
    },
    /// Start-up: the store's directory, and the regions this shard must drop.
    StartupPlan {
        /// Store id.
        store_id: u64,
        /// Every region's shard.
        directory: Vec<(u64, usize)>,
        /// Regions to drop here (a newer copy lives on another shard).
        drop: Vec<u64>,
    },
}
