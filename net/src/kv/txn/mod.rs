//! # txn — the transactional client (Percolator)
//!
//! [`TxnClient::begin`] starts a [`Transaction`] at a timestamp from the
//! [`TimestampSource`] (PD's TSO). Its writes are buffered; its reads see its own writes, and
//! otherwise read the snapshot at `start_ts`, resolving the locks they meet
//! ([`resolve`](self)). [`Transaction::commit`] runs two-phase commit: prewrite every key
//! (one request per region, regions in parallel; the first key is the primary), take a
//! commit timestamp, commit the primary — the transaction's commit point — then the
//! secondaries. When every key is in one region, the prewrite asks for one-phase commit
//! (`try_one_pc`): the leader commits it in one raft round at a timestamp it picks, and the
//! transaction is done. A conflict is a typed [`TxnError`] the caller retries with a new
//! transaction ([`TxnError::is_retryable`]). `docs/transactions.md` has the protocol.

mod debug;
mod resolve;
mod transaction;
mod two_phase;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::client::KvClient;
use super::error::KvError;
use crate::server::LocalBoxFuture;

pub use transaction::Transaction;

/// Hands out timestamps (PD's TSO in a real cluster): strictly increasing, cluster-wide.
pub trait TimestampSource: 'static {
    /// A new timestamp.
    fn get_ts(&self) -> LocalBoxFuture<std::result::Result<u64, String>>;
}

/// Settings of the transactional client.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// Time to live of the locks a commit leaves (a crashed client's locks may be rolled
    /// back this long after its start). Default 3 s.
    pub lock_ttl: Duration,
    /// How long a read or a prewrite waits for another transaction's live lock before it
    /// gives up with [`TxnError::LockWaitTimeout`]. Default 5 s.
    pub lock_wait: Duration,
    /// Ask for one-phase commit when every key of a transaction is in one region (the
    /// leader commits it in one raft round, or prewrites it when it cannot). Default on.
    pub one_pc: bool,
    /// Commit the secondaries in the background: `commit` returns once the primary is
    /// committed (the transaction's commit point; a secondary left locked is resolved as
    /// committed by whoever meets it). Off: `commit` also waits for them. Default on.
    pub async_secondaries: bool,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            lock_ttl: Duration::from_secs(3),
            lock_wait: Duration::from_secs(5),
            one_pc: true,
            async_secondaries: true,
        }
    }
}

/// How long each phase of a commit took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitPhases {
    /// The transaction committed in one phase (the prewrite was its commit; the other
    /// phases are zero).
    pub one_pc: bool,
    /// Prewriting every key (lock resolution included).
    pub prewrite: Duration,
    /// Taking the commit timestamp and committing the primary.
    pub commit_primary: Duration,
    /// Committing the secondaries (zero when they are committed in the background).
    pub commit_secondaries: Duration,
}

/// Why a transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// A key was written by a transaction that committed after this one started.
    #[error("write conflict on {key:?}: started at {start_ts}, a write committed at {conflict_commit_ts}")]
    WriteConflict {
        /// The key.
        key: Bytes,
        /// This transaction's start.
        start_ts: u64,
        /// When the conflicting write committed.
        conflict_commit_ts: u64,
    },
    /// An insert met an existing value.
    #[error("key {key:?} already exists")]
    AlreadyExist {
        /// The key.
        key: Bytes,
    },
    /// Another client rolled the transaction back (its locks had expired) before it committed.
    #[error("transaction {start_ts} was rolled back before it committed: {reason}")]
    Aborted {
        /// The transaction.
        start_ts: u64,
        /// What was found.
        reason: String,
    },
    /// Another transaction's live lock stayed in the way past [`TxnConfig::lock_wait`].
    #[error("key {key:?} stayed locked by transaction {lock_ts}")]
    LockWaitTimeout {
        /// The key.
        key: Bytes,
        /// The lock's transaction.
        lock_ts: u64,
    },
    /// Whether the primary's commit applied is unknown (the store did not answer, or the
    /// request failed after it was sent). If it did, the transaction committed at `commit_ts`.
    #[error("transaction {start_ts}: commit at {commit_ts}: outcome unknown: {reason}")]
    Undetermined {
        /// The transaction.
        start_ts: u64,
        /// The commit timestamp the primary's commit carried.
        commit_ts: u64,
        /// What happened.
        reason: String,
    },
    /// The timestamp oracle failed.
    #[error("timestamp oracle: {0}")]
    Tso(String),
    /// The routing client failed (deadline, server error, …).
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl TxnError {
    /// Whether running the transaction again (with a new start timestamp) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TxnError::WriteConflict { .. } | TxnError::Aborted { .. } | TxnError::LockWaitTimeout { .. })
    }
}

/// The result of a transactional operation.
pub type Result<T> = std::result::Result<T, TxnError>;

/// Starts transactions over a [`KvClient`]'s routing. Cheap to clone; shard-local.
#[derive(Clone)]
pub struct TxnClient {
    kv: KvClient,
    tso: Rc<dyn TimestampSource>,
    config: TxnConfig,
}

impl TxnClient {
    /// A client routing through `kv`, with timestamps from `tso`.
    pub fn new(kv: KvClient, tso: Rc<dyn TimestampSource>, config: TxnConfig) -> Self {
        TxnClient { kv, tso, config }
    }

    /// A new timestamp from the oracle.
    pub async fn timestamp(&self) -> Result<u64> {
        self.tso.get_ts().await.map_err(TxnError::Tso)
    }

    /// Starts a transaction at a new timestamp.
    pub async fn begin(&self) -> Result<Transaction> {
        let start_ts = self.timestamp().await?;
        Ok(Transaction::new(self.clone(), start_ts))
    }

    /// A read-only transaction at `ts` (a snapshot read: commit writes nothing).
    pub fn snapshot(&self, ts: u64) -> Transaction {
        Transaction::new(self.clone(), ts)
    }

    /// The routing client underneath.
    pub fn kv(&self) -> &KvClient {
        &self.kv
    }
}
