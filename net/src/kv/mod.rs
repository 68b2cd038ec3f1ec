//! # kv — the routing client
//!
//! [`KvClient`] runs the raw KV API and the operator commands against a cluster
//! (`docs/client.md`):
//!
//! * [`route`]: the [`RouteSource`] trait the client asks for regions and stores (PD
//!   implements it; `net` does not depend on PD).
//! * [`cache`]: start key → region with its leader peer and leader shard; store id → store.
//! * [`backoff`]: bounded exponential backoff per error kind under a per-operation deadline.
//! * [`error`]: [`KvError`], what callers see once retrying is over.
//! * [`stats`]: counters of requests and of retries per cause.
//! * `feedback`: how each response, region error or network failure updates the cache and
//!   decides the retry.
//! * `client`, `retry`, `locate`, `send`: the client's state, the retry loop, region lookup,
//!   and one attempt.
//! * `raw`, `batch`, `range`, `admin`: the operations.
//! * [`txn`]: the transactional client (Percolator two-phase commit, lock resolution).
//!
//! Every request goes to the region leader's shard address (`store.shard_addresses[shard]`),
//! or to the store's main address when the shard is unknown (the store forwards and hints
//! the shard). The cache only makes requests fast; the region epoch in every request keeps
//! them correct. Everything is shard-local: a client lives on one executor; clones share its
//! caches and connections.
//!
//! ```no_run
//! use std::rc::Rc;
//!
//! use bytes::Bytes;
//! use net::kv::{KvClient, KvConfig, KvError, RouteSource};
//!
//! // `pd` is PD's client (`pd::PdClient` implements `RouteSource`).
//! async fn put_then_get(pd: Rc<dyn RouteSource>) -> Result<(), KvError> {
//!     let kv = KvClient::new(pd, KvConfig::default());
//!     kv.put("k", "v").await?;
//!     assert_eq!(kv.get("k").await?, Some(Bytes::from("v")));
//!     Ok(())
//! }
//! ```

mod admin;
pub mod backoff;
mod batch;
pub mod cache;
mod client;
pub mod error;
mod feedback;
pub(crate) mod locate;
pub(crate) mod range;
mod raw;
mod retry;
pub mod route;
mod rpc;
mod send;
pub mod stats;
pub mod txn;

pub use backoff::{BackoffKind, Backoffer};
pub use cache::{CachedRegion, RegionCache, StoreCache};
pub use client::{KvClient, KvConfig};
pub use error::KvError;
pub use raw::CasResult;
pub use route::{Route, RouteSource};
pub use stats::{KvStats, RetryCause};
pub use txn::{CommitPhases, TimestampSource, Transaction, TxnClient, TxnConfig, TxnError};
