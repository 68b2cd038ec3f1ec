//! # raftstore — the store
//!
//! Regions replicated by raft-rs, each pinned to one shard of the store, writing through the
//! shard's raft log (`core_shard::log`) and applying into the shard's RocksDB. The map, a put
//! and a get traced through it, and how to add a command: `docs/raftstore.md`.
//!
//! From the top (each module uses only modules below it; `scripts/import-cycles.py` checks):
//! * [`server`]: start/stop a store; [`startup`]: the shards' start-up agreement;
//!   [`inbox`]: a shard's mailbox; [`bootstrap`]: store identity and cluster bootstrap.
//! * [`service`]: the network service, one function per request; [`request`]: a request
//!   decoded once.
//! * [`operation`]: one file per command, its whole life (propose → apply → result).
//! * [`shard`]: a shard's raft loop, which owns its peers and dispatches its events.
//! * [`peer`]: a region's peer — Ready loop, proposals, reads, snapshots, its lifecycle.
//! * [`router`]: routing inside the store; [`transport`]: raft messages between stores.
//! * [`ctx`]: what the parts of a shard share; [`msg`]: the shard's events and mailbox
//!   messages; [`directory`]: where regions live; [`shared`]: store-wide state.
//! * [`tracker`]: requests in flight, their stages and bound; [`cmd`]: commands, results and
//!   errors; [`region_error`]: the typed region errors; [`storage`]: raft-rs `Storage` over
//!   the log engine; [`engine`]: the shard's RocksDB, with [`value_cache`] in front of it;
//!   [`keys`], [`config`], [`error`].
//! * [`txn`]: Percolator transactions over MVCC as pure code (actions, commands, protocol);
//!   uses nothing of the store.

#![warn(missing_docs)]

pub mod bootstrap;
pub mod cmd;
pub mod config;
pub mod ctx;
pub mod directory;
pub mod engine;
pub mod error;
pub mod inbox;
pub mod keys;
pub mod msg;
pub mod operation;
pub mod peer;
pub mod region_error;
pub mod request;
pub mod router;
pub mod server;
pub mod service;
pub mod shard;
pub mod shared;
pub mod startup;
pub mod storage;
pub mod tracker;
pub mod transport;
pub mod txn;
pub mod value_cache;

pub use config::Config;
pub use error::{Result, StoreError};
pub use server::{start_store, StoreHandle};
