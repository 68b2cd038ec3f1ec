//! Check-txn-status: what became of a transaction, asked of its primary key by someone who
//! met one of its locks; rolls back an expired primary, and pushes a live one's
//! `min_commit_ts` past the caller's read so the caller need not wait.

use super::rollback::rollback_lock;
use crate::txn::error::{KeyError, Result};
use crate::txn::lock::LockKind;
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::{CommitRecord, MvccReader};
use crate::txn::snapshot::Snapshot;
use crate::txn::write::{Write, WriteKind};

/// A transaction's status, read at its primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Still locked and alive: wait, or read past it below `min_commit_ts`.
    Locked {
        /// The primary lock's TTL, milliseconds.
        ttl_ms: u64,
        /// The lock's (possibly pushed) min_commit_ts.
        min_commit_ts: u64,
    },
    /// Committed: resolve its other locks as committed at `commit_ts`.
    Committed {
        /// Its commit timestamp.
        commit_ts: u64,
    },
    /// Rolled back earlier.
    RolledBack,
    /// Its primary lock had expired and was rolled back now.
    TtlExpired,
    /// No lock and no record: a rollback record was written now, so it can never commit.
    LockNotExistRolledBack,
}

/// Checks the transaction of `txn.start_ts` at its `primary`. `caller_start_ts`: the read
/// timestamp of the caller (0: none), pushed past; `current_ts`: now, for TTL expiry (0:
/// never expired); `rollback_if_not_exist`: whether a missing transaction is rolled back
/// (else [`KeyError::TxnNotFound`]).
pub fn check_txn_status<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &MvccReader<'_, S>,
    primary: &[u8],
    caller_start_ts: u64,
    current_ts: u64,
    rollback_if_not_exist: bool,
) -> Result<TxnStatus> {
    match reader.load_lock(primary)? {
        Some(mut lock) if lock.start_ts == txn.start_ts => {
            if current_ts != 0 && lock.expired(current_ts) {
                rollback_lock(txn, reader, primary, &lock)?;
                return Ok(TxnStatus::TtlExpired);
            }
            let pushable = caller_start_ts != 0 && caller_start_ts != u64::MAX && lock.kind != LockKind::Lock;
            if pushable && lock.min_commit_ts <= caller_start_ts {
                lock.min_commit_ts = caller_start_ts + 1;
                txn.put_lock(primary, &lock);
            }
            Ok(TxnStatus::Locked { ttl_ms: lock.ttl_ms, min_commit_ts: lock.min_commit_ts })
        }
        _ => match reader.commit_record(primary, txn.start_ts)? {
            CommitRecord::Committed(commit_ts, _) => Ok(TxnStatus::Committed { commit_ts }),
            CommitRecord::RolledBack => Ok(TxnStatus::RolledBack),
            CommitRecord::None { overlapped } => {
                if !rollback_if_not_exist {
                    return Err(KeyError::TxnNotFound { start_ts: txn.start_ts, primary: primary.to_vec() }.into());
                }
                let record = match overlapped {
                    Some(mut w) => {
                        w.overlapped_rollback = true;
                        w
                    }
                    None => Write::new(WriteKind::Rollback, txn.start_ts, None),
                };
                txn.put_write(primary, txn.start_ts, &record);
                Ok(TxnStatus::LockNotExistRolledBack)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::error::TxnError;

    #[test]
    fn a_live_lock_is_reported_and_its_min_commit_ts_pushed() {
        let mut s = Store::default();
        let start = ts(1_000);
        s.prewrite_put(b"p", b"v", b"p", start).unwrap();
        let st = s.check_txn_status(b"p", start, start + 50, ts(1_001), false).unwrap();
        assert_eq!(st, TxnStatus::Locked { ttl_ms: TTL_MS, min_commit_ts: start + 51 });
        assert_eq!(s.lock(b"p").unwrap().min_commit_ts, start + 51);
        // A caller below the min_commit_ts pushes nothing.
        s.check_txn_status(b"p", start, start + 20, ts(1_001), false).unwrap();
        assert_eq!(s.lock(b"p").unwrap().min_commit_ts, start + 51);
    }

    #[test]
    fn an_expired_primary_is_rolled_back() {
        let mut s = Store::default();
        let start = ts(1_000);
        s.prewrite_put(b"p", b"v", b"p", start).unwrap();
        assert_eq!(s.check_txn_status(b"p", start, 0, ts(1_000 + TTL_MS), false).unwrap(), TxnStatus::TtlExpired);
        assert!(s.lock(b"p").is_none());
        assert_eq!(s.check_txn_status(b"p", start, 0, ts(1_000 + TTL_MS), false).unwrap(), TxnStatus::RolledBack);
        assert!(matches!(s.commit(b"p", start, start + 1), Err(TxnError::Key(KeyError::TxnLockNotFound { .. }))));
    }

    #[test]
    fn a_committed_primary_reports_its_commit_ts() {
        let mut s = Store::default();
        s.put(b"p", b"v", 10, 20);
        assert_eq!(s.check_txn_status(b"p", 10, 0, 0, true).unwrap(), TxnStatus::Committed { commit_ts: 20 });
    }

    #[test]
    fn a_missing_transaction_is_rolled_back_or_reported() {
        let mut s = Store::default();
        assert_eq!(
            s.check_txn_status(b"p", 10, 0, 0, false),
            Err(TxnError::Key(KeyError::TxnNotFound { start_ts: 10, primary: b"p".to_vec() }))
        );
        assert_eq!(s.check_txn_status(b"p", 10, 0, 0, true).unwrap(), TxnStatus::LockNotExistRolledBack);
        // The prewrite that arrives late is refused.
        assert!(matches!(s.prewrite_put(b"p", b"v", b"p", 10), Err(TxnError::Key(KeyError::WriteConflict { .. }))));
    }
}
