//! Rollback and cleanup: undo a transaction's lock on one key and leave a rollback record
//! behind, so that a late prewrite or commit of the same transaction is refused.

use crate::txn::error::{KeyError, Result};
use crate::txn::lock::{Lock, LockKind};
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::{CommitRecord, MvccReader};
use crate::txn::snapshot::Snapshot;
use crate::txn::write::{Write, WriteKind};

/// Removes this transaction's `lock` on `key`, its long value, and writes the rollback record.
pub fn rollback_lock<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &MvccReader<'_, S>,
    key: &[u8],
    lock: &Lock,
) -> Result<()> {
    if lock.kind == LockKind::Put && lock.short_value.is_none() {
        txn.delete_value(key, lock.start_ts);
    }
    let overlapped = match reader.seek_write(key, txn.start_ts)? {
        Some((commit_ts, w)) if commit_ts == txn.start_ts => Some(w),
        _ => None,
    };
    write_rollback(txn, key, overlapped);
    txn.unlock(key);
    Ok(())
}

/// Writes the rollback record of this transaction on `key`; when another transaction's
/// commit record sits at `key @ start_ts`, marks that one instead of overwriting it.
fn write_rollback(txn: &mut MvccTxn, key: &[u8], overlapped: Option<Write>) {
    let record = match overlapped {
        Some(mut w) => {
            w.overlapped_rollback = true;
            w
        }
        None => Write::new(WriteKind::Rollback, txn.start_ts, None),
    };
    txn.put_write(key, txn.start_ts, &record);
}

/// Rolls back a key this transaction holds no lock on: refused if it committed
/// ([`KeyError::Committed`]), nothing to do if already rolled back, otherwise a rollback
/// record protects the key against a late prewrite.
pub fn rollback_missing<S: Snapshot>(txn: &mut MvccTxn, reader: &MvccReader<'_, S>, key: &[u8]) -> Result<()> {
    match reader.commit_record(key, txn.start_ts)? {
        CommitRecord::Committed(commit_ts, _) => Err(KeyError::Committed { commit_ts }.into()),
        CommitRecord::RolledBack => Ok(()),
        CommitRecord::None { overlapped } => {
            write_rollback(txn, key, overlapped);
            Ok(())
        }
    }
}

/// Rolls back this transaction on `key`, whether it holds the lock or not.
pub fn rollback<S: Snapshot>(txn: &mut MvccTxn, reader: &MvccReader<'_, S>, key: &[u8]) -> Result<()> {
    match reader.load_lock(key)? {
        Some(lock) if lock.start_ts == txn.start_ts => rollback_lock(txn, reader, key, &lock),
        _ => rollback_missing(txn, reader, key),
    }
}

/// Cleanup: rolls back this transaction's lock on `key` only once its TTL has passed at
/// `current_ts` (`0`: at once), else [`KeyError::Locked`]; refused if the key committed.
pub fn cleanup<S: Snapshot>(txn: &mut MvccTxn, reader: &MvccReader<'_, S>, key: &[u8], current_ts: u64) -> Result<()> {
    match reader.load_lock(key)? {
        Some(lock) if lock.start_ts == txn.start_ts => {
            if current_ts != 0 && !lock.expired(current_ts) {
                return Err(KeyError::Locked(lock.info(key)).into());
            }
            rollback_lock(txn, reader, key, &lock)
        }
        _ => rollback_missing(txn, reader, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::error::TxnError;
    use crate::txn::lock::SHORT_VALUE_MAX;
    use crate::txn::snapshot::Cf;

    #[test]
    fn rollback_removes_the_lock_and_the_long_value_and_protects_the_key() {
        let mut s = Store::default();
        s.prewrite_put(b"k", &vec![1; SHORT_VALUE_MAX + 1], b"k", 10).unwrap();
        assert_eq!(s.mem.len(Cf::Default), 1);
        s.rollback(b"k", 10).unwrap();
        assert!(s.lock(b"k").is_none());
        assert_eq!(s.mem.len(Cf::Default), 0);
        assert_eq!(s.writes(b"k"), vec![(10, Write::new(WriteKind::Rollback, 10, None))]);
        // Idempotent.
        s.rollback(b"k", 10).unwrap();
        assert_eq!(s.writes(b"k").len(), 1);
    }

    #[test]
    fn rollback_without_a_lock_still_protects_the_key() {
        let mut s = Store::default();
        s.rollback(b"k", 10).unwrap();
        assert!(matches!(s.prewrite_put(b"k", b"v", b"k", 10), Err(TxnError::Key(KeyError::WriteConflict { .. }))));
    }

    #[test]
    fn a_committed_transaction_cannot_be_rolled_back() {
        let mut s = Store::default();
        s.put(b"k", b"v", 10, 11);
        assert_eq!(s.rollback(b"k", 10), Err(TxnError::Key(KeyError::Committed { commit_ts: 11 })));
        assert_eq!(s.cleanup(b"k", 10, 0), Err(TxnError::Key(KeyError::Committed { commit_ts: 11 })));
        assert_eq!(s.get(b"k", 12).unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_rollback_at_another_transactions_commit_ts_marks_that_record() {
        let mut s = Store::default();
        s.put(b"k", b"v", 5, 10);
        s.rollback(b"k", 10).unwrap();
        let writes = s.writes(b"k");
        assert_eq!(writes.len(), 1);
        assert_eq!((writes[0].1.kind, writes[0].1.overlapped_rollback), (WriteKind::Put, true));
        assert_eq!(s.get(b"k", 11).unwrap(), Some(b"v".to_vec()));
        assert!(matches!(s.prewrite_put(b"k", b"w", b"k", 10), Err(TxnError::Key(KeyError::WriteConflict { .. }))));
        assert_eq!(
            s.commit(b"k", 10, 12),
            Err(TxnError::Key(KeyError::TxnLockNotFound { start_ts: 10, key: b"k".to_vec() }))
        );
    }

    #[test]
    fn cleanup_waits_for_the_ttl() {
        let mut s = Store::default();
        let start = ts(5_000);
        s.prewrite_put(b"k", b"v", b"k", start).unwrap();
        assert!(matches!(s.cleanup(b"k", start, ts(5_000 + TTL_MS - 1)), Err(TxnError::Key(KeyError::Locked(_)))));
        assert!(s.lock(b"k").is_some());
        s.cleanup(b"k", start, ts(5_000 + TTL_MS)).unwrap();
        assert!(s.lock(b"k").is_none());
    }

    #[test]
    fn rollback_leaves_another_transactions_lock_alone() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 12).unwrap();
        s.rollback(b"k", 10).unwrap();
        assert_eq!(s.lock(b"k").unwrap().start_ts, 12);
        s.commit(b"k", 12, 13).unwrap();
        assert_eq!(s.get(b"k", 13).unwrap(), Some(b"v".to_vec()));
    }
}
