//! Reading MVCC data out of a [`Snapshot`]: a key's lock, its versions, what a read at a
//! timestamp sees, and a transaction's fate on a key.

use super::codec::{decode_key, encode_key, prefix_end, split_version, versioned};
use super::error::{Result, TxnError};
use super::lock::Lock;
use super::snapshot::{Cf, Snapshot};
use super::write::{Write, WriteKind};

/// What a key's write records say about the transaction that started at a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitRecord {
    /// It committed at this timestamp.
    Committed(u64, Write),
    /// It was rolled back (a rollback record, or a commit of another transaction at the same
    /// timestamp marked as overlapping one).
    RolledBack,
    /// No record: neither committed nor rolled back on this key. `overlapped` is the commit
    /// record of another transaction sitting at `key @ start_ts`, if one does (a rollback
    /// must then mark it rather than overwrite it).
    None {
        /// Another transaction's record at `key @ start_ts`.
        overlapped: Option<Write>,
    },
}

/// Reads MVCC data of a snapshot. All keys are user keys.
pub struct MvccReader<'a, S: Snapshot> {
    snap: &'a S,
}

impl<'a, S: Snapshot> MvccReader<'a, S> {
    /// A reader over `snap`.
    pub fn new(snap: &'a S) -> Self {
        MvccReader { snap }
    }

    /// The key's lock, if any.
    pub fn load_lock(&self, key: &[u8]) -> Result<Option<Lock>> {
        self.snap.get(Cf::Lock, &encode_key(key))?.map(|v| Lock::decode(&v)).transpose()
    }

    /// The versions of `key` in a versioned family (`Write` or `Default`) at or below `ts`,
    /// newest first, at most `limit`: `(timestamp, stored value)`.
    fn versions(&self, cf: Cf, key: &[u8], ts: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let enc = encode_key(key);
        let from = versioned(&enc, ts);
        let to = prefix_end(&enc);
        let mut out = Vec::new();
        for (k, v) in self.snap.scan(cf, &from, to.as_deref(), limit)? {
            let (user, version) = split_version(&k)?;
            if user != enc.as_slice() {
                return Err(TxnError::corrupt(format!("a {} key outside its key's range", cf.name())));
            }
            out.push((version, v));
        }
        Ok(out)
    }

    /// Write records of `key` committed at or before `ts`, newest first, at most `limit`.
    pub fn writes_at_or_before(&self, key: &[u8], ts: u64, limit: usize) -> Result<Vec<(u64, Write)>> {
        self.versions(Cf::Write, key, ts, limit)?.into_iter().map(|(c, v)| Ok((c, Write::decode(&v)?))).collect()
    }

    /// The newest write record of `key` committed at or before `ts`, of any kind.
    pub fn seek_write(&self, key: &[u8], ts: u64) -> Result<Option<(u64, Write)>> {
        Ok(self.writes_at_or_before(key, ts, 1)?.pop())
    }

    /// The newest put or delete of `key` committed at or before `ts` (lock and rollback
    /// records skipped).
    pub fn data_write(&self, key: &[u8], ts: u64) -> Result<Option<(u64, Write)>> {
        let mut at = ts;
        loop {
            let batch = self.writes_at_or_before(key, at, 16)?;
            let last = batch.last().map(|&(c, _)| c);
            for (commit_ts, w) in batch {
                if w.kind.is_data() {
                    return Ok(Some((commit_ts, w)));
                }
            }
            match last {
                Some(c) if c > 0 => at = c - 1,
                _ => return Ok(None),
            }
        }
    }

    /// The value of `key` that a read at `ts` sees, locks ignored.
    pub fn value_at(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        match self.data_write(key, ts)? {
            Some((_, w)) if w.kind == WriteKind::Put => self.value_of(key, &w).map(Some),
            _ => Ok(None),
        }
    }

    /// `(start_ts, value)` of `key`'s values in the default family (the long ones), newest
    /// first, at most `limit`.
    pub fn long_values(&self, key: &[u8], limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.versions(Cf::Default, key, u64::MAX, limit)
    }

    /// The value a put record points to: inline, or in the default family.
    pub fn value_of(&self, key: &[u8], w: &Write) -> Result<Vec<u8>> {
        if let Some(v) = &w.short_value {
            return Ok(v.clone());
        }
        self.snap
            .get(Cf::Default, &versioned(&encode_key(key), w.start_ts))?
            .ok_or_else(|| TxnError::corrupt(format!("value of {key:?} written at {} is missing", w.start_ts)))
    }

    /// What the write records of `key` say about the transaction started at `start_ts`.
    pub fn commit_record(&self, key: &[u8], start_ts: u64) -> Result<CommitRecord> {
        let mut at = u64::MAX;
        loop {
            let batch = self.writes_at_or_before(key, at, 16)?;
            let last = batch.last().map(|&(c, _)| c);
            for (commit_ts, w) in batch {
                if commit_ts < start_ts {
                    return Ok(CommitRecord::None { overlapped: None });
                }
                if w.start_ts == start_ts {
                    return Ok(match w.kind {
                        WriteKind::Rollback => CommitRecord::RolledBack,
                        _ => CommitRecord::Committed(commit_ts, w),
                    });
                }
                if commit_ts == start_ts {
                    return Ok(match w.overlapped_rollback {
                        true => CommitRecord::RolledBack,
                        false => CommitRecord::None { overlapped: Some(w) },
                    });
                }
            }
            match last {
                Some(c) if c > start_ts => at = c - 1,
                _ => return Ok(CommitRecord::None { overlapped: None }),
            }
        }
    }

    /// Locks on keys in `[start, end)` (`end` empty: no end), ascending, at most `limit`,
    /// that `keep` accepts.
    pub fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        keep: impl Fn(&Lock) -> bool,
    ) -> Result<Vec<(Vec<u8>, Lock)>> {
        let mut from = encode_key(start);
        let to = (!end.is_empty()).then(|| encode_key(end));
        let mut out = Vec::new();
        while out.len() < limit {
            let batch = self.snap.scan(Cf::Lock, &from, to.as_deref(), 64)?;
            let Some((last, _)) = batch.last() else { break };
            from = [last.as_slice(), &[0]].concat();
            let exhausted = batch.len() < 64;
            for (k, v) in batch {
                let lock = Lock::decode(&v)?;
                if keep(&lock) && out.len() < limit {
                    out.push((decode_key(&k)?.0, lock));
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    /// The user keys with write records in `[start, end)`, ascending, from `start`, at most
    /// `limit` (each key once, whatever its number of versions).
    pub fn keys_with_writes(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut from = encode_key(start);
        let to = (!end.is_empty()).then(|| encode_key(end));
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((k, _)) = self.snap.scan(Cf::Write, &from, to.as_deref(), 1)?.pop() else { break };
            let (enc, _) = split_version(&k)?;
            let (user, _) = decode_key(enc)?;
            match prefix_end(enc) {
                Some(next) => from = next,
                None => {
                    out.push(user);
                    break;
                }
            }
            out.push(user);
        }
        Ok(out)
    }
}
