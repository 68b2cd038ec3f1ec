//! Resolve-lock: once a transaction's fate is known from its primary, commit or roll back
//! its lock on another key.

use super::commit::commit;
use super::rollback::rollback;
use crate::txn::error::Result;
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::MvccReader;
use crate::txn::snapshot::Snapshot;

/// Commits `key` at `commit_ts` (the primary committed), or rolls it back (`None`: the
/// primary was rolled back).
pub fn resolve_lock<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &MvccReader<'_, S>,
    key: &[u8],
    commit_ts: Option<u64>,
) -> Result<()> {
    match commit_ts {
        Some(c) => commit(txn, reader, key, c),
        None => rollback(txn, reader, key),
    }
}

#[cfg(test)]
mod tests {
    use crate::txn::actions::test_util::*;
    use crate::txn::actions::TxnStatus;

    /// The client crashed after committing the primary: a reader meets the secondary's lock,
    /// learns the primary committed, and resolves the secondary as committed.
    #[test]
    fn a_secondary_of_a_committed_primary_is_committed() {
        let mut s = Store::default();
        s.prewrite_put(b"p", b"1", b"p", 10).unwrap();
        s.prewrite_put(b"s", b"2", b"p", 10).unwrap();
        s.commit(b"p", 10, 20).unwrap();
        let lock = s.lock(b"s").unwrap();
        let st = s.check_txn_status(&lock.primary, lock.start_ts, 30, 0, true).unwrap();
        assert_eq!(st, TxnStatus::Committed { commit_ts: 20 });
        s.resolve(b"s", 10, Some(20)).unwrap();
        assert_eq!(s.get(b"s", 30).unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get(b"s", 19).unwrap(), None);
    }

    /// The client crashed before committing: the expired primary is rolled back and the
    /// secondary with it.
    #[test]
    fn a_secondary_of_an_aborted_primary_is_rolled_back() {
        let mut s = Store::default();
        let start = ts(2_000);
        s.prewrite_put(b"p", b"1", b"p", start).unwrap();
        s.prewrite_put(b"s", b"2", b"p", start).unwrap();
        let st = s.check_txn_status(b"p", start, start + 5, ts(2_000 + TTL_MS), true).unwrap();
        assert_eq!(st, TxnStatus::TtlExpired);
        s.resolve(b"s", start, None).unwrap();
        assert!(s.lock(b"s").is_none());
        assert_eq!(s.get(b"s", u64::MAX).unwrap(), None);
        // The crashed client, come back, cannot commit.
        assert!(s.commit(b"p", start, start + 9).is_err());
        assert!(s.commit(b"s", start, start + 9).is_err());
    }
}
