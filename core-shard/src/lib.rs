//! # core-shard — Percore's thread-per-core runtime and per-shard raft log
//!
//! * [`placement`]: which CPU each shard runs on (`--shards`, `--cpus`, `--placement`).
//! * [`runtime`]: the shard pool — pinned glommio executors, task queues, shutdown.
//! * [`mailbox`]: bounded cross-shard mailboxes, batched per loop turn.
//! * [`tick`]: one timer per shard driving every region's raft clock.
//! * [`log`]: the per-shard raft log engine with group commit.
//! * [`notify`], [`oneshot`]: single-threaded wake-up and reply primitives.
//!
//! Everything shard-local is `Rc`/`RefCell`; only mailboxes and the shutdown signal cross
//! threads. See `docs/runtime.md` and `docs/raft-log.md`.

#![warn(missing_docs)]

pub mod failpoint;
pub mod log;
pub mod mailbox;
pub mod notify;
pub mod oneshot;
pub mod placement;
pub mod runtime;
pub mod tick;
