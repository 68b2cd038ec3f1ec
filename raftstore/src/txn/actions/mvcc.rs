//! The MVCC dump of one key, for debugging (`percore-ctl mvcc`): its lock, every write
//! record newest first, and the long values kept in the default family.

use crate::txn::error::Result;
use crate::txn::lock::Lock;
use crate::txn::reader::MvccReader;
use crate::txn::snapshot::Snapshot;
use crate::txn::write::Write;

/// At most this many write records and values are reported per key.
pub const MVCC_DUMP_LIMIT: usize = 10_000;

/// Everything stored for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvccInfo {
    /// Its lock, if any.
    pub lock: Option<Lock>,
    /// `(commit_ts, record)`, newest first (rollbacks under their start timestamp).
    pub writes: Vec<(u64, Write)>,
    /// `(start_ts, value)` of the values too long to be inline, newest first.
    pub values: Vec<(u64, Vec<u8>)>,
}

/// Reads everything stored for `key` (at most [`MVCC_DUMP_LIMIT`] records of each kind).
pub fn mvcc<S: Snapshot>(reader: &MvccReader<'_, S>, key: &[u8]) -> Result<MvccInfo> {
    Ok(MvccInfo {
        lock: reader.load_lock(key)?,
        writes: reader.writes_at_or_before(key, u64::MAX, MVCC_DUMP_LIMIT)?,
        values: reader.long_values(key, MVCC_DUMP_LIMIT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::lock::SHORT_VALUE_MAX;
    use crate::txn::write::WriteKind;

    #[test]
    fn the_dump_shows_lock_records_and_long_values() {
        let mut s = Store::default();
        let long = vec![b'x'; SHORT_VALUE_MAX + 1];
        s.put(b"k", b"short", 10, 11);
        s.put(b"k", &long, 12, 13);
        s.delete(b"k", 14, 15);
        s.rollback(b"k", 16).unwrap();
        s.prewrite_put(b"k", b"next", b"k", 20).unwrap();
        s.put(b"other", b"o", 21, 22);
        let info = mvcc(&MvccReader::new(&s.mem), b"k").unwrap();
        assert_eq!(info.lock.map(|l| l.start_ts), Some(20));
        let kinds: Vec<(u64, WriteKind, u64)> = info.writes.iter().map(|(c, w)| (*c, w.kind, w.start_ts)).collect();
        assert_eq!(
            kinds,
            vec![
                (16, WriteKind::Rollback, 16),
                (15, WriteKind::Delete, 14),
                (13, WriteKind::Put, 12),
                (11, WriteKind::Put, 10)
            ]
        );
        assert_eq!(info.writes[3].1.short_value.as_deref(), Some(&b"short"[..]));
        assert_eq!(info.values, vec![(12, long)]);
        let none = mvcc(&MvccReader::new(&s.mem), b"absent").unwrap();
        assert!(none.lock.is_none() && none.writes.is_empty() && none.values.is_empty());
    }
}
