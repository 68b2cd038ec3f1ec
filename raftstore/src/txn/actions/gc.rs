//! GC of one key: remove the versions no read at or after the safe point can see.

use crate::txn::error::Result;
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::MvccReader;
use crate::txn::snapshot::Snapshot;
use crate::txn::write::WriteKind;

/// What GC removed from one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Write records removed.
    pub writes: usize,
    /// Long values removed from the default family.
    pub values: usize,
}

/// Removes the write records of `key` committed at or before `safe_point` except the newest
/// put among them (and its value): every read at `safe_point` or later sees the same. Lock
/// and rollback records at or before it go; so does a delete that is the newest, with all
/// below it. Locks are left alone (the resolver deals with them). `txn` only collects the
/// deletions; its start_ts is unused.
pub fn gc<S: Snapshot>(txn: &mut MvccTxn, reader: &MvccReader<'_, S>, key: &[u8], safe_point: u64) -> Result<GcStats> {
    let mut stats = GcStats::default();
    let mut visible_found = false;
    let mut at = safe_point;
    loop {
        let batch = reader.writes_at_or_before(key, at, 64)?;
        let last = batch.last().map(|&(c, _)| c);
        for (commit_ts, w) in batch {
            let keep = !visible_found && w.kind == WriteKind::Put;
            if w.kind.is_data() {
                visible_found = true;
            }
            if keep {
                continue;
            }
            txn.delete_write(key, commit_ts);
            stats.writes += 1;
            if w.kind == WriteKind::Put && w.short_value.is_none() {
                txn.delete_value(key, w.start_ts);
                stats.values += 1;
            }
        }
        match last {
            Some(c) if c > 0 => at = c - 1,
            _ => return Ok(stats),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::lock::SHORT_VALUE_MAX;
    use crate::txn::snapshot::Cf;

    #[test]
    fn gc_keeps_what_reads_at_the_safe_point_see() {
        let mut s = Store::default();
        let long = vec![9u8; SHORT_VALUE_MAX + 1];
        s.put(b"k", &long, 10, 11);
        s.put(b"k", b"v2", 20, 21);
        s.rollback(b"k", 25).unwrap();
        s.lock_only(b"k", 26, 27);
        s.put(b"k", b"v3", 30, 31);
        s.put(b"k", b"v4", 40, 41);
        let stats = s.gc(b"k", 35);
        assert_eq!(stats, GcStats { writes: 4, values: 1 });
        assert_eq!(s.mem.len(Cf::Default), 0);
        assert_eq!(s.get(b"k", 35).unwrap(), Some(b"v3".to_vec()));
        assert_eq!(s.get(b"k", 41).unwrap(), Some(b"v4".to_vec()));
        assert_eq!(s.writes(b"k").iter().map(|w| w.0).collect::<Vec<_>>(), vec![41, 31]);
        // Idempotent.
        assert_eq!(s.gc(b"k", 35), GcStats::default());
    }

    #[test]
    fn a_delete_below_the_safe_point_goes_with_everything_under_it() {
        let mut s = Store::default();
        s.put(b"k", b"v1", 10, 11);
        s.delete(b"k", 20, 21);
        s.put(b"k", b"v3", 40, 41);
        assert_eq!(s.gc(b"k", 30).writes, 2);
        assert_eq!(s.get(b"k", 30).unwrap(), None);
        assert_eq!(s.get(b"k", 41).unwrap(), Some(b"v3".to_vec()));
        assert_eq!(s.writes(b"k").len(), 1);
    }
}
