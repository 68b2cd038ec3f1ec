//! # net — Percore's wire protocol, connections and client library
//!
//! * [`proto`]: the prost types compiled from `net/proto/*.proto` (raft-rs's `eraftpb` reused).
//! * [`frame`]: the sans-IO frame codec (`u32` length + `Envelope`), with a maximum size.
//! * [`conn`]: a TCP stream split into reader and writer tasks; frames of one loop turn
//!   leave in one write.
//! * [`server`]: the accept loop run on every shard and the `Service` trait.
//! * [`client`]: client connections with many calls in flight, and a per-shard pool.
//! * [`kv`]: the routing client — region cache, leader and shard routing, retries with
//!   backoff — for the raw KV API and operator commands.

#![warn(missing_docs)]

pub mod client;
pub mod conn;
pub mod error;
pub mod frame;
pub mod kv;
pub mod proto;
pub mod server;

pub use client::{Client, ClientPool};
pub use conn::ConnConfig;
pub use error::NetError;
pub use proto::rpcpb::Method;
