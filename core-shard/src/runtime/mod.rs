//! The shard pool: N glommio executors, each pinned to one CPU, each running one shard.
//!
//! ```text
//!   ShardPool::start(config, |shard| async move { ... })
//!        │ one thread per shard, created before any other thread of the process
//!        ▼
//!   ┌─ shard 0 (cpu 0) ──────────────┐   ┌─ shard 1 (cpu 1) ──────────────┐
//!   │ queues: latency/apply/background│   │ ...                            │
//!   │ ticks: one timer                │   │                                │
//!   │ outbox ──────── batches ────────┼──▶│ inbox                          │
//!   │ shutdown signal                 │   │                                │
//!   └─────────────────────────────────┘   └────────────────────────────────┘
//! ```
//!
//! The thread-per-core rules (`docs/runtime.md`) are applied here once, so that nothing
//! built on top can get them wrong: executors pinned with `Placement::Fixed`, small
//! `io_memory`, `spin_before_park` set, the blocking pool on explicit CPUs other than the
//! shard's own when there are any, and separate task queues with shares.
//!
//! Shutdown is cooperative: [`ShardPool::shutdown`] fires every shard's
//! [`ShutdownSignal`]; each shard's future is expected to stop its work, sync and close its
//! files (the log engine's `close`), and return. [`ShardPool::join`] collects the results.

mod pool;
mod queues;
mod shutdown;
pub mod signals;

pub use pool::{PoolConfig, RuntimeError, Shard, ShardPool};
pub use queues::TaskQueues;
pub use shutdown::{ShutdownHandle, ShutdownSignal};
