//! Commit: turn a transaction's lock on one key into a commit record.

use crate::txn::error::{KeyError, Result, TxnError};
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::{CommitRecord, MvccReader};
use crate::txn::snapshot::Snapshot;
use crate::txn::write::{Write, WriteKind};

/// Commits `key` at `commit_ts`. Idempotent: a key this transaction already committed is
/// fine. Refused when the lock is gone and nothing committed it (rolled back by a resolver:
/// [`KeyError::TxnLockNotFound`]), or when `commit_ts` is below the lock's `min_commit_ts`.
pub fn commit<S: Snapshot>(txn: &mut MvccTxn, reader: &MvccReader<'_, S>, key: &[u8], commit_ts: u64) -> Result<()> {
    let start_ts = txn.start_ts;
    if commit_ts <= start_ts {
        return Err(TxnError::invalid(format!("commit_ts {commit_ts} is not after start_ts {start_ts}")));
    }
    match reader.load_lock(key)? {
        Some(lock) if lock.start_ts == start_ts => {
            if commit_ts < lock.min_commit_ts {
                return Err(KeyError::CommitTsExpired {
                    start_ts,
                    commit_ts,
                    min_commit_ts: lock.min_commit_ts,
                    key: key.to_vec(),
                }
                .into());
            }
            txn.put_write(key, commit_ts, &Write::new(WriteKind::from_lock(lock.kind), start_ts, lock.short_value));
            txn.unlock(key);
            Ok(())
        }
        _ => match reader.commit_record(key, start_ts)? {
            CommitRecord::Committed(..) => Ok(()),
            CommitRecord::RolledBack | CommitRecord::None { .. } => {
                Err(KeyError::TxnLockNotFound { start_ts, key: key.to_vec() }.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;

    #[test]
    fn a_commit_makes_the_value_visible_from_its_commit_ts() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        s.commit(b"k", 10, 15).unwrap();
        assert!(s.lock(b"k").is_none());
        assert_eq!(s.get(b"k", 14).unwrap(), None);
        assert_eq!(s.get(b"k", 15).unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn commit_is_idempotent() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        s.commit(b"k", 10, 15).unwrap();
        s.commit(b"k", 10, 15).unwrap();
        // Even after another transaction wrote the key since.
        s.put(b"k", b"w", 20, 21);
        s.commit(b"k", 10, 15).unwrap();
        assert_eq!(s.writes(b"k").len(), 2);
    }

    #[test]
    fn a_rolled_back_or_missing_lock_cannot_commit() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        s.rollback(b"k", 10).unwrap();
        assert!(matches!(s.commit(b"k", 10, 15), Err(TxnError::Key(KeyError::TxnLockNotFound { start_ts: 10, .. }))));
        assert!(matches!(s.commit(b"j", 10, 15), Err(TxnError::Key(KeyError::TxnLockNotFound { .. }))));
        // Another transaction's lock on the key is not ours to commit.
        s.prewrite_put(b"j", b"v", b"j", 12).unwrap();
        assert!(matches!(s.commit(b"j", 10, 15), Err(TxnError::Key(KeyError::TxnLockNotFound { .. }))));
        assert_eq!(s.get(b"k", 20).unwrap(), None);
    }

    #[test]
    fn an_expired_lock_rolled_back_by_a_resolver_cannot_commit() {
        let mut s = Store::default();
        let start = ts(1_000);
        s.prewrite_put(b"k", b"v", b"k", start).unwrap();
        s.cleanup(b"k", start, ts(1_000 + TTL_MS)).unwrap();
        assert!(matches!(s.commit(b"k", start, start + 1), Err(TxnError::Key(KeyError::TxnLockNotFound { .. }))));
    }

    #[test]
    fn a_commit_below_a_pushed_min_commit_ts_is_refused() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        s.check_txn_status(b"k", 10, 30, 0, false).unwrap();
        match s.commit(b"k", 10, 20) {
            Err(TxnError::Key(KeyError::CommitTsExpired { min_commit_ts, .. })) => assert_eq!(min_commit_ts, 31),
            other => panic!("expected CommitTsExpired, got {other:?}"),
        }
        s.commit(b"k", 10, 31).unwrap();
    }

    #[test]
    fn commit_ts_must_follow_start_ts() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        assert!(matches!(s.commit(b"k", 10, 10), Err(TxnError::Invalid(_))));
    }
}
