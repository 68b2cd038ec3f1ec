//! # raftstore — the store
//!
//! Regions replicated by raft-rs, each pinned to one shard of the store, writing through the
//! shard's raft log (`core_shard::log`) and applying into the shard's RocksDB (DESIGN.md,
//! "Regions, peers and the raft loop", "Storage").
//!
//! * [`server`]: start/stop a store (shard pool, start-up agreement, PD registration).
//! * [`shard`]: a shard's raft loop, which owns its peers; [`router`]: routing inside the store.
//! * [`peer`]: a region's peer — Ready loop, apply, reads, snapshots.
//! * [`operation`]: one file per command (write, conf change, split, transfer leader, compact log).
//! * [`storage`]: raft-rs `Storage` over the log engine; [`engine`]: the shard's RocksDB.
//! * [`service`]: the network service; [`transport`]: raft messages between stores.
//! * [`tracker`]: client requests in flight, their stages, the bound and the slow-request log.
//! * [`bootstrap`]: store identity and cluster bootstrap; [`config`]: the TOML configuration.

#![warn(missing_docs)]

pub mod bootstrap;
pub mod config;
pub mod engine;
pub mod error;
pub mod keys;
pub mod operation;
pub mod peer;
pub mod region_error;
pub mod router;
pub mod server;
pub mod service;
pub mod shard;
pub mod storage;
pub mod tracker;
pub mod transport;

pub use config::Config;
pub use error::{Result, StoreError};
pub use server::{start_store, StoreHandle};
