//! # net — Percore's wire protocol, connections and client library
//!
//! This crate will hold (DESIGN.md, "Wire protocol" and "Client and routing"): the `.proto`
//! files under `net/proto/` compiled by prost, the sans-IO length-prefixed frame codec, glommio
//! connections with many requests in flight, the server accept loop run on every shard, the
//! raft transport (message batches per destination store), and the client library with its
//! region cache, leader/shard routing, typed region errors and bounded backoff.
//!
//! Nothing is implemented yet: the issue "Wire protocol and PD core" builds it.
