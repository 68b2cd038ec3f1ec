//! The transactional actions, one file each: pure functions from a snapshot reader and a
//! request to a result plus modifications (collected in an [`MvccTxn`](super::MvccTxn)),
//! with no I/O of their own. Each file's tests are the action's table of cases (TinyKV
//! project 4's among them), run against a [`MemStore`](super::MemStore).

mod check_txn_status;
mod commit;
mod gc;
mod mvcc;
mod prewrite;
mod read;
mod resolve_lock;
mod rollback;
#[cfg(test)]
mod test_util;

pub use check_txn_status::{check_txn_status, TxnStatus};
pub use commit::commit;
pub use gc::{gc, GcStats};
pub use mvcc::{mvcc, MvccInfo, MVCC_DUMP_LIMIT};
pub use prewrite::{prewrite, Mutation, Prewritten, TxnProps};
pub use read::{blocks, get, scan};
pub use resolve_lock::resolve_lock;
pub use rollback::{cleanup, rollback};
