//! Errors of the raft log engine.

use std::path::PathBuf;

/// What can go wrong in the log engine. `Clone`, because one I/O failure is reported to every
/// append waiting on the failed batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// An I/O operation failed. After a failed write or fdatasync the engine stops accepting
    /// appends (it cannot know what reached the disk); reopening recovers what is durable.
    #[error("raft log I/O error: {op} {path}: {message}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error kind.
        kind: std::io::ErrorKind,
        /// The OS error text.
        message: String,
    },
    /// Bytes before the tail of the log do not verify: data that was acknowledged is
    /// damaged. The engine refuses to open rather than silently skipping it.
    #[error("raft log corrupted in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the first bad batch.
        offset: u64,
        /// What was found.
        reason: String,
    },
    /// The directory holds something that is not this engine's log.
    #[error("{path} is not a percore raft log directory: {reason}")]
    NotALog {
        /// The identity file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// One append is larger than a segment can hold.
    #[error("append of {size} bytes exceeds the largest record a segment holds ({max} bytes)")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Entries not contiguous, or not continuing the region's log.
    #[error("region {region}: {reason}")]
    BadAppend {
        /// The region.
        region: u64,
        /// Why.
        reason: String,
    },
    /// A read below the region's first index.
    #[error("region {region}: index {index} is compacted (first index {first})")]
    Compacted {
        /// The region.
        region: u64,
        /// Requested index.
        index: u64,
        /// The region's first index.
        first: u64,
    },
    /// A read past the region's last index, or of a region the log does not have.
    #[error("region {region}: index {index} is not in the log")]
    Unavailable {
        /// The region.
        region: u64,
        /// Requested index.
        index: u64,
    },
    /// The engine stopped after an earlier failure (the cause is given).
    #[error("raft log failed earlier: {0}")]
    Failed(String),
    /// The engine is closed or closing.
    #[error("raft log is closed")]
    Closed,
}

impl LogError {
    /// Wraps an I/O error (glommio errors convert into `std::io::Error`).
    pub fn io(op: &'static str, path: impl Into<PathBuf>, err: impl Into<std::io::Error>) -> Self {
        let err: std::io::Error = err.into();
        LogError::Io { op, path: path.into(), kind: err.kind(), message: err.to_string() }
    }
}

/// Result alias of the log engine.
pub type Result<T> = std::result::Result<T, LogError>;
