//! Errors of the store.

use core_shard::log::LogError;
use net::NetError;
use pd::PdError;

/// What can go wrong in the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("storage engine: {0}")]
    Engine(String),
    /// The raft log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// PD failed.
    #[error(transparent)]
    Pd(#[from] PdError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// raft-rs refused an operation.
    #[error("raft: {0}")]
    Raft(String),
    /// A file-system operation failed.
    #[error("io: {0}")]
    Io(String),
    /// The store's identity or on-disk state does not fit the configuration.
    #[error("store: {0}")]
    Identity(String),
    /// The store is shutting down.
    #[error("the store is shutting down")]
    ShuttingDown,
}

impl From<raft::Error> for StoreError {
    fn from(e: raft::Error) -> Self {
        StoreError::Raft(e.to_string())
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;
