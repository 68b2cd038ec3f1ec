//! A lock, the value of the `lock` column family: one per key, written by prewrite.

use super::codec::{put_bytes, put_varint, Decoder};
use super::error::{Result, TxnError};
pub use super::types::{LockInfo, LockKind};
use pd::tso;

/// Values up to this many bytes are kept inline in the lock and the write record; longer
/// ones go to the `default` column family under `key @ start_ts`.
pub const SHORT_VALUE_MAX: usize = 255;

/// A prewritten, uncommitted change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// What it does.
    pub kind: LockKind,
    /// The transaction's primary key (user key): its fate decides this lock's.
    pub primary: Vec<u8>,
    /// The transaction's start timestamp.
    pub start_ts: u64,
    /// Milliseconds after `start_ts`'s physical time until a resolver may roll it back.
    pub ttl_ms: u64,
    /// The value, when short enough to be inline.
    pub short_value: Option<Vec<u8>>,
    /// The transaction will commit at or after this timestamp (readers at a lower timestamp
    /// may read past the lock; check-txn-status pushes it).
    pub min_commit_ts: u64,
}

impl Lock {
    /// Encodes the lock as stored.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.primary.len() + self.short_value.as_ref().map_or(0, Vec::len));
        out.push(kind_tag(self.kind));
        put_bytes(&mut out, &self.primary);
        put_varint(&mut out, self.start_ts);
        put_varint(&mut out, self.ttl_ms);
        put_varint(&mut out, self.min_commit_ts);
        if let Some(v) = &self.short_value {
            out.push(b'v');
            put_bytes(&mut out, v);
        }
        out
    }

    /// Decodes a stored lock.
    pub fn decode(data: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(data, "lock");
        let kind = kind_from_tag(d.byte()?)?;
        let primary = d.bytes()?;
        let start_ts = d.varint()?;
        let ttl_ms = d.varint()?;
        let min_commit_ts = d.varint()?;
        let short_value = match d.is_empty() {
            true => None,
            false => match d.byte()? {
                b'v' => Some(d.bytes()?),
                t => return Err(TxnError::corrupt(format!("lock field {t:#x}"))),
            },
        };
        if !d.is_empty() {
            return Err(TxnError::corrupt("lock has trailing bytes"));
        }
        Ok(Lock { kind, primary, start_ts, ttl_ms, short_value, min_commit_ts })
    }

    /// Whether a resolver may roll it back at `current_ts`: its TTL, counted from the
    /// physical time of its start, has passed.
    pub fn expired(&self, current_ts: u64) -> bool {
        tso::split(current_ts).0 >= tso::split(self.start_ts).0.saturating_add(self.ttl_ms)
    }

    /// The lock as reported to a client.
    pub fn info(&self, key: &[u8]) -> LockInfo {
        LockInfo {
            key: key.to_vec(),
            primary: self.primary.clone(),
            start_ts: self.start_ts,
            ttl_ms: self.ttl_ms,
            kind: self.kind,
            min_commit_ts: self.min_commit_ts,
        }
    }
}

fn kind_tag(kind: LockKind) -> u8 {
    match kind {
        LockKind::Put => b'P',
        LockKind::Delete => b'D',
        LockKind::Lock => b'L',
    }
}

fn kind_from_tag(tag: u8) -> Result<LockKind> {
    match tag {
        b'P' => Ok(LockKind::Put),
        b'D' => Ok(LockKind::Delete),
        b'L' => Ok(LockKind::Lock),
        _ => Err(TxnError::corrupt(format!("lock kind {tag:#x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_round_trip_and_damage_is_an_error() {
        let lock = Lock {
            kind: LockKind::Put,
            primary: b"pk".to_vec(),
            start_ts: tso::compose(1_000, 7),
            ttl_ms: 3_000,
            short_value: Some(b"v".to_vec()),
            min_commit_ts: 12,
        };
        let data = lock.encode();
        assert_eq!(Lock::decode(&data).unwrap(), lock);
        let bare = Lock { kind: LockKind::Delete, short_value: None, ..lock.clone() };
        assert_eq!(Lock::decode(&bare.encode()).unwrap(), bare);
        assert!(Lock::decode(&data[..data.len() - 1]).is_err());
        assert!(Lock::decode(&[b'X', 0, 0, 0, 0]).is_err());
        assert!(Lock::decode(&[data.clone(), vec![1]].concat()).is_err());
    }

    #[test]
    fn a_lock_expires_by_the_physical_time_of_its_start() {
        let lock = Lock {
            kind: LockKind::Put,
            primary: vec![1],
            start_ts: tso::compose(10_000, 5),
            ttl_ms: 100,
            short_value: None,
            min_commit_ts: 0,
        };
        assert!(!lock.expired(tso::compose(10_099, 0)));
        assert!(lock.expired(tso::compose(10_100, 0)));
        assert!(!lock.expired(0));
    }
}
