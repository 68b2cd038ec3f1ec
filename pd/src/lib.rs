//! # pd — the placement driver
//!
//! PD is the cluster's memory and clock (`docs/pd.md`, `docs/scheduling.md`):
//! * [`server`]: cluster bootstrap, stores, regions ([`region_tree`]), heartbeats, split
//!   ids, served as a `net` service on one shard; [`cluster`]: what it knows of the cluster;
//! * [`schedule`]: operators, the replica checker, balance schedulers and their coordinator;
//! * [`tso`]: the timestamp oracle (`physical_ms << 18 | logical`), persisted 3 s ahead;
//! * [`id_alloc`]: ids persisted in steps of 1000;
//! * [`gc`]: the MVCC GC safe point, persisted, never moving back;
//! * [`storage`]: PD's RocksDB;
//! * [`client`]: the PD client with reconnect/backoff and batched TSO;
//! * [`route`]: the PD client as the KV client's `net::kv::RouteSource`.
//!
//! Binaries: `percore-pd` (the server) and `percore-ctl` (the operator CLI).

#![warn(missing_docs)]

pub mod client;
pub mod cluster;
pub mod embedded;
pub mod error;
pub mod gc;
pub mod id_alloc;
pub mod region_tree;
pub mod route;
pub mod schedule;
pub mod server;
pub mod storage;
pub mod tso;

pub use client::{PdClient, PdClientConfig, RegionRoute};
pub use embedded::PdServer;
pub use error::{PdError, Result};
pub use server::Pd;
