//! What a command is and what it answers: the requests the raft loop takes from the
//! service (writes, reads, admin commands), their results and errors, and the side effects
//! applying a command asks of the shard. Everything above uses these; they use nothing of
//! the store.

use bytes::Bytes;
use net::proto::errorpb::RegionError;
use net::proto::metapb::{self, Region};
use net::proto::raft_cmdpb::{self, AdminResponse};

/// Why a command failed.
#[derive(Debug, Clone)]
pub enum CmdError {
    /// Routing is wrong: the client fixes it and retries.
    Region(Box<RegionError>),
    /// The command itself failed (not retryable as is).
    Other(String),
    /// A transactional read met a key error (a lock in the way).
    Key(Box<crate::txn::KeyError>),
}

/// The result of a replicated command.
#[derive(Debug, Clone, Default)]
pub struct CmdResponse {
    /// One response per request of a normal command.
    pub responses: Vec<raft_cmdpb::Response>,
    /// The result of an admin command.
    pub admin: Option<AdminResponse>,
}

/// A command's result.
pub type CmdResult = Result<CmdResponse, CmdError>;

/// A read executed by the leader (lease or read index).
#[derive(Debug, Clone)]
pub enum ReadRequest {
    /// One key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Many keys.
    BatchGet {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// A range.
    Scan {
        /// First key (inclusive).
        start: Bytes,
        /// Last key (exclusive; empty = the region's end).
        end: Bytes,
        /// At most this many (0 = no limit).
        limit: u32,
        /// Descending.
        reverse: bool,
        /// Keys only.
        key_only: bool,
    },
    /// A transactional read.
    Txn(TxnRead),
}

/// A transactional read at a timestamp (`bypass`: start timestamps of transactions whose
/// locks the reader may read past).
#[derive(Debug, Clone)]
pub enum TxnRead {
    /// One key.
    Get {
        /// The key.
        key: Bytes,
        /// The read timestamp.
        ts: u64,
        /// Locks read past.
        bypass: Vec<u64>,
    },
    /// Many keys.
    BatchGet {
        /// The keys.
        keys: Vec<Bytes>,
        /// The read timestamp.
        ts: u64,
        /// Locks read past.
        bypass: Vec<u64>,
    },
    /// A range, ascending.
    Scan {
        /// First key (inclusive).
        start: Bytes,
        /// End (exclusive; empty = the region's end).
        end: Bytes,
        /// At most this many (0 = no limit).
        limit: u32,
        /// The read timestamp.
        ts: u64,
        /// Locks read past.
        bypass: Vec<u64>,
    },
    /// Locks of transactions started at or before `max_ts` in a range: pairs of key and
    /// encoded lock.
    ScanLock {
        /// First key (inclusive).
        start: Bytes,
        /// End (exclusive; empty = the region's end).
        end: Bytes,
        /// At most this many (0 = no limit).
        limit: u32,
        /// Newest start timestamp reported.
        max_ts: u64,
    },
    /// Everything stored for `key` (answered as one pair whose value is the encoded
    /// `KvMvccResponse`).
    Mvcc {
        /// The key.
        key: Bytes,
    },
}

/// Pairs found by a read (`None` value = not found, for gets).
pub type ReadResult = Result<Vec<(Bytes, Option<Bytes>)>, CmdError>;

/// Operator commands.
#[derive(Debug, Clone)]
pub enum AdminCmd {
    /// Add or remove a peer.
    ChangePeer {
        /// The change.
        change_type: raft_cmdpb::ConfChangeType,
        /// The peer.
        peer: metapb::Peer,
    },
    /// Move leadership.
    TransferLeader {
        /// To this peer.
        peer: metapb::Peer,
    },
    /// Split at a key.
    Split {
        /// The first key of the new region.
        split_key: Bytes,
    },
}

/// A peer's view of its region, for debugging and checksums.
#[derive(Debug, Clone, Default)]
pub struct RegionDebug {
    /// The region.
    pub region: metapb::Region,
    /// Applied index.
    pub applied_index: u64,
    /// Truncated index.
    pub truncated_index: u64,
    /// Last log index.
    pub last_index: u64,
    /// Commit index.
    pub commit_index: u64,
    /// Current term.
    pub term: u64,
    /// Whether this peer leads.
    pub is_leader: bool,
    /// CRC32C over keys and values in key order.
    pub checksum: u64,
    /// Keys.
    pub key_count: u64,
}

/// What applying asks the raft loop to do.
#[derive(Debug)]
pub enum ApplyEffect {
    /// A split: create the new region's peer.
    Split {
        /// The region after the split (this peer's).
        left: Box<Region>,
        /// The new region.
        right: Box<Region>,
    },
    /// This peer was removed from its region.
    Destroy,
}
