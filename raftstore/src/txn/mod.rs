//! # txn — Percolator transactions over MVCC, as pure code
//!
//! The transaction layer of issue 15, in TiKV's shape: three column families per shard
//! ([`Cf`]: `lock`, `write`, `default`), keys encoded so versions sort newest first
//! ([`codec`]), and each action ([`actions`]) a function from a snapshot reader and a request
//! to a result plus modifications, with no I/O of its own. A [`TxnCommand`] runs the action
//! over a region's keys into one set of modifications, to be replicated through raft as one
//! command and applied in one write batch. The store processes a command at apply, on every
//! replica, against the state at its log position, so the raft log itself orders commands
//! on the same keys (no latches; see `docs/transactions.md`). [`proto`] converts to and from
//! the `kvrpcpb::Kv*` messages, [`wire`] the modifications to and from their raft form.
//!
//! Nothing here uses the rest of the store.

pub mod actions;
pub mod codec;
pub mod commands;
pub mod error;
pub mod lock;
pub mod mvcc_txn;
pub mod proto;
pub mod reader;
pub mod snapshot;
pub mod types;
pub mod wire;
pub mod write;

pub use commands::{Processed, TxnCommand, TxnResponse};
pub use error::{KeyError, Result, TxnError};
pub use lock::{Lock, LockInfo, LockKind};
pub use mvcc_txn::MvccTxn;
pub use reader::{CommitRecord, MvccReader};
pub use snapshot::{Cf, MemStore, Modify, Snapshot};
pub use write::{Write, WriteKind};
