//! # percore-tests — cross-crate integration and fault-injection suites
//!
//! [`cluster`] is the in-process cluster harness: a PD and N stores × M shards in one
//! process, real TCP on loopback, real RocksDB and raft logs in a temporary directory,
//! transport filters (drop a share of raft messages, partition stores into sets, isolate
//! one), and stopping/restarting a store from its disk. The suites live in `tests/tests/`.
//! [`linearizability`] records concurrent clients' histories and checks them; [`si`] checks
//! transactional histories for snapshot isolation, over the [`bank`] workload.

pub mod bank;
pub mod chaos;
pub mod cluster;
pub mod filter;
pub mod linearizability;
pub mod scenario;
pub mod si;
pub mod workload;
