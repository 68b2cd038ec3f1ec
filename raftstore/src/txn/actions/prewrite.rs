//! Prewrite: lock one key for a transaction (two-phase commit), or, in one-phase commit,
//! write its commit record at once.

use crate::txn::error::{KeyError, Result};
use crate::txn::lock::{Lock, LockKind, SHORT_VALUE_MAX};
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::{CommitRecord, MvccReader};
use crate::txn::snapshot::Snapshot;
use crate::txn::write::{Write, WriteKind};

/// A change a transaction makes to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Write a value.
    Put(Vec<u8>, Vec<u8>),
    /// Write a value that must not exist yet ([`KeyError::AlreadyExist`] otherwise).
    Insert(Vec<u8>, Vec<u8>),
    /// Delete the key.
    Delete(Vec<u8>),
    /// Lock the key without changing it (no one may write it before this commits).
    Lock(Vec<u8>),
    /// Only check that the key does not exist; writes nothing.
    CheckNotExists(Vec<u8>),
}

impl Mutation {
    /// The key.
    pub fn key(&self) -> &[u8] {
        match self {
            Mutation::Put(k, _)
            | Mutation::Insert(k, _)
            | Mutation::Delete(k)
            | Mutation::Lock(k)
            | Mutation::CheckNotExists(k) => k,
        }
    }

    fn should_not_exist(&self) -> bool {
        matches!(self, Mutation::Insert(..) | Mutation::CheckNotExists(_))
    }
}

/// What a prewrite applies to every key of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnProps {
    /// The transaction's start timestamp.
    pub start_ts: u64,
    /// Its primary key.
    pub primary: Vec<u8>,
    /// Lock time to live, milliseconds.
    pub lock_ttl_ms: u64,
    /// The smallest commit timestamp allowed (at least `start_ts + 1`).
    pub min_commit_ts: u64,
    /// One-phase commit at this timestamp: commit records instead of locks.
    pub one_pc_commit_ts: Option<u64>,
}

/// What a prewrite of one key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prewritten {
    /// Locked (or, in one-phase commit, committed) now.
    Written,
    /// Nothing to do: this transaction's lock is already there (a retry), or the mutation
    /// only checked.
    Unchanged,
    /// Nothing to do: this transaction already committed the key, at this timestamp (a
    /// retried one-phase commit whose first attempt applied).
    Committed(u64),
}

/// Prewrites `m`: refuses it if another transaction's lock is on the key
/// ([`KeyError::Locked`]), if a write committed after `start_ts` or this transaction was
/// rolled back on the key ([`KeyError::WriteConflict`]), or if an insert meets a value.
pub fn prewrite<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &MvccReader<'_, S>,
    props: &TxnProps,
    m: &Mutation,
) -> Result<Prewritten> {
    let key = m.key();
    let start_ts = txn.start_ts;
    if let Some(lock) = reader.load_lock(key)? {
        if lock.start_ts != start_ts {
            return Err(KeyError::Locked(lock.info(key)).into());
        }
        return Ok(Prewritten::Unchanged);
    }
    if let Some((commit_ts, w)) = reader.seek_write(key, u64::MAX)? {
        let newer = commit_ts > start_ts;
        let self_rolled_back = commit_ts == start_ts && (w.kind == WriteKind::Rollback || w.overlapped_rollback);
        if newer || self_rolled_back {
            if let CommitRecord::Committed(ts, _) = reader.commit_record(key, start_ts)? {
                return Ok(Prewritten::Committed(ts));
            }
            return Err(KeyError::WriteConflict {
                start_ts,
                conflict_start_ts: w.start_ts,
                conflict_commit_ts: commit_ts,
                key: key.to_vec(),
                primary: props.primary.clone(),
            }
            .into());
        }
    }
    if m.should_not_exist() {
        if let Some((_, w)) = reader.data_write(key, u64::MAX)? {
            if w.kind == WriteKind::Put {
                return Err(KeyError::AlreadyExist { key: key.to_vec() }.into());
            }
        }
    }
    let (kind, value) = match m {
        Mutation::Put(_, v) | Mutation::Insert(_, v) => (LockKind::Put, Some(v)),
        Mutation::Delete(_) => (LockKind::Delete, None),
        Mutation::Lock(_) => (LockKind::Lock, None),
        Mutation::CheckNotExists(_) => return Ok(Prewritten::Unchanged),
    };
    let short_value = match value {
        Some(v) if v.len() <= SHORT_VALUE_MAX => Some(v.clone()),
        Some(v) => {
            txn.put_value(key, v.clone());
            None
        }
        None => None,
    };
    match props.one_pc_commit_ts {
        Some(commit_ts) => {
            txn.put_write(key, commit_ts, &Write::new(WriteKind::from_lock(kind), start_ts, short_value))
        }
        None => txn.put_lock(
            key,
            &Lock {
                kind,
                primary: props.primary.clone(),
                start_ts,
                ttl_ms: props.lock_ttl_ms,
                short_value,
                min_commit_ts: props.min_commit_ts.max(start_ts + 1),
            },
        ),
    }
    Ok(Prewritten::Written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::error::TxnError;

    #[test]
    fn a_prewrite_locks_and_a_retry_changes_nothing() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"k", 10).unwrap();
        let lock = s.lock(b"k").unwrap();
        assert_eq!((lock.start_ts, lock.kind, lock.short_value.as_deref()), (10, LockKind::Put, Some(&b"v"[..])));
        assert_eq!(lock.min_commit_ts, 11);
        assert_eq!(s.prewrite_put(b"k", b"v", b"k", 10).unwrap(), Prewritten::Unchanged);
    }

    #[test]
    fn another_transactions_lock_is_key_is_locked() {
        let mut s = Store::default();
        s.prewrite_put(b"k", b"v", b"p", 10).unwrap();
        match s.prewrite_put(b"k", b"w", b"k", 12) {
            Err(TxnError::Key(KeyError::Locked(info))) => {
                assert_eq!((info.key.as_slice(), info.primary.as_slice(), info.start_ts), (&b"k"[..], &b"p"[..], 10))
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn a_write_committed_after_the_start_is_a_write_conflict() {
        let mut s = Store::default();
        s.put(b"k", b"v1", 10, 20);
        match s.prewrite_put(b"k", b"v2", b"k", 15) {
            Err(TxnError::Key(KeyError::WriteConflict { start_ts, conflict_start_ts, conflict_commit_ts, .. })) => {
                assert_eq!((start_ts, conflict_start_ts, conflict_commit_ts), (15, 10, 20))
            }
            other => panic!("expected WriteConflict, got {other:?}"),
        }
        // Committed before the start: no conflict.
        s.prewrite_put(b"k", b"v3", b"k", 25).unwrap();
    }

    #[test]
    fn a_rolled_back_transaction_cannot_prewrite_again() {
        let mut s = Store::default();
        s.rollback(b"k", 10).unwrap();
        assert!(matches!(s.prewrite_put(b"k", b"v", b"k", 10), Err(TxnError::Key(KeyError::WriteConflict { .. }))));
        assert!(s.lock(b"k").is_none());
    }

    #[test]
    fn insert_refuses_an_existing_value_but_not_a_deleted_one() {
        let mut s = Store::default();
        s.put(b"k", b"v", 10, 11);
        let props = s.props(b"k", 20);
        let ins = Mutation::Insert(b"k".to_vec(), b"x".to_vec());
        assert!(matches!(s.prewrite(&props, &ins), Err(TxnError::Key(KeyError::AlreadyExist { .. }))));
        s.delete(b"k", 21, 22);
        s.prewrite(&s.props(b"k", 30), &ins).unwrap();
        let check = Mutation::CheckNotExists(b"j".to_vec());
        assert_eq!(s.prewrite(&s.props(b"j", 30), &check).unwrap(), Prewritten::Unchanged);
        assert!(s.lock(b"j").is_none());
    }

    #[test]
    fn long_values_go_to_the_default_family() {
        let mut s = Store::default();
        let long = vec![7u8; SHORT_VALUE_MAX + 1];
        s.prewrite_put(b"k", &long, b"k", 10).unwrap();
        assert_eq!(s.lock(b"k").unwrap().short_value, None);
        s.commit(b"k", 10, 11).unwrap();
        assert_eq!(s.get(b"k", 12).unwrap(), Some(long));
    }

    #[test]
    fn one_phase_commit_writes_the_commit_record_without_a_lock() {
        let mut s = Store::default();
        let mut props = s.props(b"k", 10);
        props.one_pc_commit_ts = Some(11);
        s.prewrite(&props, &Mutation::Put(b"k".to_vec(), b"v".to_vec())).unwrap();
        assert!(s.lock(b"k").is_none());
        assert_eq!(s.get(b"k", 10).unwrap(), None);
        assert_eq!(s.get(b"k", 11).unwrap(), Some(b"v".to_vec()));
        // A retried one-phase commit is a no-op, even after a later write.
        s.put(b"k", b"w", 12, 13);
        assert_eq!(
            s.prewrite(&props, &Mutation::Put(b"k".to_vec(), b"v".to_vec())).unwrap(),
            Prewritten::Committed(11)
        );
        assert_eq!(s.get(b"k", 14).unwrap(), Some(b"w".to_vec()));
        // Retried at another timestamp (a new leader chose it): the first commit stands.
        props.one_pc_commit_ts = Some(15);
        assert_eq!(
            s.prewrite(&props, &Mutation::Put(b"k".to_vec(), b"v".to_vec())).unwrap(),
            Prewritten::Committed(11)
        );
        assert_eq!(s.get(b"k", 16).unwrap(), Some(b"w".to_vec()));
    }
}
