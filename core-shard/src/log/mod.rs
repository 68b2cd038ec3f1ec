//! The per-shard raft log engine.
//!
//! One log per shard, shared by every region on the shard (the raft-engine / Scylla
//! commitlog pattern: a file per region does not scale, and one fdatasync should cover the
//! appends of every region). See [`engine`] for the group-commit pipeline, [`format`] for the
//! bytes on disk, [`recovery`] for how a torn tail is told from corruption, and
//! [`segments`] for the files.
//!
//! ```no_run
//! # async fn demo() -> Result<(), core_shard::log::LogError> {
//! use core_shard::log::{Entry, HardState, LogConfig, LogEngine, LogQueues};
//! let (log, report) = LogEngine::open("/tmp/raftlog", LogConfig::default(), LogQueues::current()).await?;
//! let durable = log.append(7, vec![Entry { index: 6, term: 5, data: "put k v".into() }],
//!                          Some(HardState { term: 5, vote: 1, commit: 5 }))?;
//! durable.await?; // one fdatasync covered it and everything else appended meanwhile
//! let entries = log.entries(7, 6, 7, None).await?;
//! log.close().await?;
//! # Ok(()) }
//! ```

pub mod engine;
pub mod error;
pub mod format;
pub mod index;
pub mod recovery;
pub mod segments;

pub use engine::{Durable, LogConfig, LogEngine, LogQueues, LogStats, PurgeReport};
pub use error::{LogError, Result};
pub use format::{Entry, HardState};
pub use recovery::RecoveryReport;
