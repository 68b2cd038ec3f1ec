//! # percore-tests — cross-crate integration and fault-injection suites
//!
//! This crate will hold the in-process cluster harness (N stores × M shards, transport
//! filters, stop/restart from disk), the process-level kill tests and the linearizability
//! checks (DESIGN.md, "Workspace layout"). The foundation's own tests live next to its code in
//! `core-shard/tests/`.
