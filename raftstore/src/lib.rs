//! # raftstore — the store
//!
//! This crate will hold (DESIGN.md, "Regions, peers and the raft loop" and "Storage"): region
//! peers on raft-rs pinned to shards and driven by the Ready loop with async persistence
//! through the shard's log engine (`core_shard::log`), the RocksDB state machine, one file per
//! admin command (split, conf change, transfer leader, compact log), snapshots, lease and
//! ReadIndex reads, and the `percore-server` binary.
//!
//! Nothing is implemented yet: the issue "Replicated store" builds it. Its dependencies
//! (raft-rs, RocksDB) are declared already so that the first build compiles RocksDB once.
