//! Snapshot reads: a key or a range as of a timestamp, refused where a lock of a transaction
//! that may commit below that timestamp is in the way.

use crate::txn::error::{KeyError, Result};
use crate::txn::lock::{Lock, LockKind};
use crate::txn::reader::MvccReader;
use crate::txn::snapshot::Snapshot;

/// Whether `lock` blocks a read at `ts`: it does unless its transaction started after `ts`,
/// only locks the key, must commit after `ts` (`min_commit_ts`), or is one the reader has
/// learned commits after it (`bypass`: start timestamps).
pub fn blocks(lock: &Lock, ts: u64, bypass: &[u64]) -> bool {
    lock.start_ts <= ts && lock.kind != LockKind::Lock && lock.min_commit_ts <= ts && !bypass.contains(&lock.start_ts)
}

/// The value of `key` as of `ts`.
pub fn get<S: Snapshot>(reader: &MvccReader<'_, S>, key: &[u8], ts: u64, bypass: &[u64]) -> Result<Option<Vec<u8>>> {
    if let Some(lock) = reader.load_lock(key)? {
        if blocks(&lock, ts, bypass) {
            return Err(KeyError::Locked(lock.info(key)).into());
        }
    }
    reader.value_at(key, ts)
}

/// Up to `limit` pairs with keys in `[start, end)` (`end` empty: no end), ascending, as of
/// `ts`. A blocking lock on any key of the part of the range read fails the whole scan with
/// [`KeyError::Locked`] (the client resolves it and scans again).
pub fn scan<S: Snapshot>(
    reader: &MvccReader<'_, S>,
    start: &[u8],
    end: &[u8],
    limit: usize,
    ts: u64,
    bypass: &[u64],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut cursor = start.to_vec();
    let mut exhausted = false;
    'outer: while out.len() < limit {
        let keys = reader.keys_with_writes(&cursor, end, (limit - out.len()).clamp(1, 256))?;
        if keys.is_empty() {
            exhausted = true;
            break;
        }
        for key in keys {
            let value = reader.value_at(&key, ts)?;
            cursor = [key.as_slice(), &[0]].concat();
            if let Some(v) = value {
                out.push((key, v));
                if out.len() == limit {
                    break 'outer;
                }
            }
        }
    }
    // Locks on the part read, written keys or not (an insert in flight has no writes yet).
    let lock_end: &[u8] = if exhausted { end } else { &cursor };
    if let Some((key, lock)) = reader.scan_locks(start, lock_end, 1, |l| blocks(l, ts, bypass))?.pop() {
        return Err(KeyError::Locked(lock.info(&key)).into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::actions::test_util::*;
    use crate::txn::error::TxnError;

    #[test]
    fn a_read_sees_the_newest_version_committed_at_or_before_its_ts() {
        let mut s = Store::default();
        s.put(b"k", b"v1", 10, 11);
        s.put(b"k", b"v2", 20, 21);
        s.delete(b"k", 30, 31);
        s.lock_only(b"k", 40, 41);
        s.rollback(b"k", 50).unwrap();
        assert_eq!(s.get(b"k", 10).unwrap(), None);
        assert_eq!(s.get(b"k", 11).unwrap(), Some(b"v1".to_vec()));
        assert_eq!(s.get(b"k", 25).unwrap(), Some(b"v2".to_vec()));
        assert_eq!(s.get(b"k", 31).unwrap(), None);
        assert_eq!(s.get(b"k", 60).unwrap(), None);
        s.put(b"k", b"v3", 70, 71);
        assert_eq!(s.get(b"k", u64::MAX).unwrap(), Some(b"v3".to_vec()));
    }

    #[test]
    fn a_lock_blocks_only_reads_it_may_commit_below() {
        let mut s = Store::default();
        s.put(b"k", b"old", 1, 2);
        s.prewrite_put(b"k", b"new", b"k", 10).unwrap();
        assert!(matches!(s.get(b"k", 12), Err(TxnError::Key(KeyError::Locked(_)))));
        assert_eq!(s.get(b"k", 9).unwrap(), Some(b"old".to_vec()));
        let reader = MvccReader::new(&s.mem);
        assert_eq!(get(&reader, b"k", 12, &[10]).unwrap(), Some(b"old".to_vec()));
        // Pushed past the reader: readable.
        s.check_txn_status(b"k", 10, 12, 0, false).unwrap();
        assert_eq!(s.get(b"k", 12).unwrap(), Some(b"old".to_vec()));
        assert!(matches!(s.get(b"k", 13), Err(TxnError::Key(KeyError::Locked(_)))));
        // Lock-only locks never block.
        s.prewrite(&s.props(b"j", 5), &crate::txn::actions::Mutation::Lock(b"j".to_vec())).unwrap();
        assert_eq!(s.get(b"j", 20).unwrap(), None);
    }

    #[test]
    fn a_scan_walks_keys_in_order_at_its_ts() {
        let mut s = Store::default();
        for (i, k) in [&b"a"[..], b"b", b"c", b"d", b"e"].iter().enumerate() {
            s.put(k, &[b'0' + i as u8], 10, 11);
        }
        s.delete(b"b", 12, 13);
        s.put(b"c", b"C", 14, 15);
        let all = s.scan(b"", b"", 10, 20).unwrap();
        let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"c", b"d", b"e"]);
        assert_eq!(all[1].1, b"C");
        assert_eq!(s.scan(b"", b"", 10, 12).unwrap().len(), 5);
        assert_eq!(s.scan(b"b", b"e", 10, 20).unwrap().len(), 2);
        assert_eq!(s.scan(b"a", b"", 2, 20).unwrap().len(), 2);
        assert!(s.scan(b"", b"", 10, 11).unwrap().iter().all(|(_, v)| v.len() == 1));
    }

    #[test]
    fn a_scan_is_blocked_by_a_lock_in_the_part_it_read_even_on_a_new_key() {
        let mut s = Store::default();
        s.put(b"a", b"1", 1, 2);
        s.put(b"c", b"3", 1, 2);
        s.prewrite_put(b"b", b"2", b"b", 5).unwrap();
        assert!(matches!(s.scan(b"", b"", 10, 6), Err(TxnError::Key(KeyError::Locked(_)))));
        // A limit that stops before the lock reads past it.
        assert_eq!(s.scan(b"", b"", 1, 6).unwrap().len(), 1);
        assert_eq!(s.scan(b"", b"", 10, 4).unwrap().len(), 2);
    }
}
