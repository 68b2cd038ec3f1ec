//! What a transactional action can fail with: typed key errors a client acts on, and
//! failures of the data underneath.

use super::types::LockInfo;

/// A typed error about one key, returned to the client, which resolves or retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Another transaction's lock is in the way; the client checks its primary and resolves.
    Locked(LockInfo),
    /// A write committed at or after this transaction's start: retry with a new start_ts.
    WriteConflict {
        /// This transaction's start.
        start_ts: u64,
        /// The conflicting transaction's start.
        conflict_start_ts: u64,
        /// When the conflicting write committed.
        conflict_commit_ts: u64,
        /// The key.
        key: Vec<u8>,
        /// This transaction's primary key.
        primary: Vec<u8>,
    },
    /// The lock to commit is gone and no commit record exists: the transaction was rolled
    /// back (by a resolver) or never prewrote this key.
    TxnLockNotFound {
        /// The transaction.
        start_ts: u64,
        /// The key.
        key: Vec<u8>,
    },
    /// The transaction already committed (a rollback or cleanup came too late).
    Committed {
        /// Its commit timestamp.
        commit_ts: u64,
    },
    /// An insert met an existing value.
    AlreadyExist {
        /// The key.
        key: Vec<u8>,
    },
    /// The commit timestamp is below the lock's `min_commit_ts` (a reader pushed it): fetch
    /// a new commit timestamp and commit again.
    CommitTsExpired {
        /// The transaction.
        start_ts: u64,
        /// The commit timestamp tried.
        commit_ts: u64,
        /// The smallest commit timestamp the lock allows now.
        min_commit_ts: u64,
        /// The key.
        key: Vec<u8>,
    },
    /// `check-txn-status` found neither a lock nor a commit record of the transaction, and
    /// was told not to write a rollback.
    TxnNotFound {
        /// The transaction.
        start_ts: u64,
        /// Its primary key.
        primary: Vec<u8>,
    },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Locked(l) => {
                write!(f, "key {:?} is locked by transaction {} (primary {:?})", l.key, l.start_ts, l.primary)
            }
            KeyError::WriteConflict { start_ts, conflict_start_ts, conflict_commit_ts, key, .. } => write!(
                f,
                "write conflict on {key:?}: transaction {start_ts} met transaction {conflict_start_ts} committed at {conflict_commit_ts}"
            ),
            KeyError::TxnLockNotFound { start_ts, key } => {
                write!(f, "lock of transaction {start_ts} on {key:?} not found (rolled back?)")
            }
            KeyError::Committed { commit_ts } => write!(f, "transaction already committed at {commit_ts}"),
            KeyError::AlreadyExist { key } => write!(f, "key {key:?} already exists"),
            KeyError::CommitTsExpired { start_ts, commit_ts, min_commit_ts, .. } => write!(
                f,
                "commit of transaction {start_ts} at {commit_ts} is below its min_commit_ts {min_commit_ts}"
            ),
            KeyError::TxnNotFound { start_ts, primary } => {
                write!(f, "transaction {start_ts} (primary {primary:?}) not found")
            }
        }
    }
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnError {
    /// A typed error about a key (the request was fine; the data says no).
    Key(KeyError),
    /// Stored MVCC data does not decode: a bug or damage, never retried.
    Corrupt(String),
    /// The storage engine failed.
    Engine(String),
    /// The request itself is invalid (empty key, timestamps out of order…).
    Invalid(String),
}

impl TxnError {
    /// A decoding failure of stored data.
    pub fn corrupt(why: impl Into<String>) -> Self {
        TxnError::Corrupt(why.into())
    }

    /// An invalid request.
    pub fn invalid(why: impl Into<String>) -> Self {
        TxnError::Invalid(why.into())
    }
}

impl From<KeyError> for TxnError {
    fn from(e: KeyError) -> Self {
        TxnError::Key(e)
    }
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnError::Key(e) => e.fmt(f),
            TxnError::Corrupt(why) => write!(f, "corrupt MVCC data: {why}"),
            TxnError::Engine(why) => write!(f, "storage engine: {why}"),
            TxnError::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl std::error::Error for TxnError {}

/// The result of an action.
pub type Result<T> = std::result::Result<T, TxnError>;
