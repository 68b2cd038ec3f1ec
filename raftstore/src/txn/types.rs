//! Plain types the rest of the transaction layer shares: column families, lock kinds and
//! the lock information reported to clients. Uses nothing.

/// A column family of transactional data (TiKV's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Values too long to be inline, under `key @ start_ts`.
    Default,
    /// One lock per key, under the encoded key.
    Lock,
    /// Commit and rollback records, under `key @ commit_ts` (rollbacks: `key @ start_ts`).
    Write,
}

impl Cf {
    /// Every column family.
    pub const ALL: [Cf; 3] = [Cf::Default, Cf::Lock, Cf::Write];

    /// The column family's name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Default => "txn_default",
            Cf::Lock => "txn_lock",
            Cf::Write => "txn_write",
        }
    }
}

/// What the transaction will do to the key when it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Write a value.
    Put,
    /// Delete the key.
    Delete,
    /// Only lock it (a read that must not be written under the transaction's feet); readers
    /// ignore such locks.
    Lock,
}

/// A lock as reported to a client, with the key it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The locked key (user key).
    pub key: Vec<u8>,
    /// The owner's primary key.
    pub primary: Vec<u8>,
    /// The owner's start timestamp.
    pub start_ts: u64,
    /// Its time to live, milliseconds.
    pub ttl_ms: u64,
    /// What it does.
    pub kind: LockKind,
    /// Its min_commit_ts.
    pub min_commit_ts: u64,
}
