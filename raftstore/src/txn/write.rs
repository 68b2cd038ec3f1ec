//! A write record, the value of the `write` column family under `key @ commit_ts`: what a
//! transaction that started at `start_ts` did to the key.

use super::codec::{put_bytes, put_varint, Decoder};
use super::error::{Result, TxnError};
use super::lock::LockKind;

/// What a committed (or rolled back) transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Wrote a value.
    Put,
    /// Deleted the key.
    Delete,
    /// Locked it only; no data change.
    Lock,
    /// Rolled back: stored under `key @ start_ts`, so that a late prewrite or commit of the
    /// same transaction is refused (rollback protection).
    Rollback,
}

impl WriteKind {
    /// The kind a lock of `kind` commits as.
    pub fn from_lock(kind: LockKind) -> Self {
        match kind {
            LockKind::Put => WriteKind::Put,
            LockKind::Delete => WriteKind::Delete,
            LockKind::Lock => WriteKind::Lock,
        }
    }

    /// Whether it changed the key's data (a put or a delete).
    pub fn is_data(self) -> bool {
        matches!(self, WriteKind::Put | WriteKind::Delete)
    }

    fn tag(self) -> u8 {
        match self {
            WriteKind::Put => b'P',
            WriteKind::Delete => b'D',
            WriteKind::Lock => b'L',
            WriteKind::Rollback => b'R',
        }
    }

    fn from_tag(tag: u8) -> Result<Self> {
        match tag {
            b'P' => Ok(WriteKind::Put),
            b'D' => Ok(WriteKind::Delete),
            b'L' => Ok(WriteKind::Lock),
            b'R' => Ok(WriteKind::Rollback),
            _ => Err(TxnError::corrupt(format!("write kind {tag:#x}"))),
        }
    }
}

/// A write record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// What it did.
    pub kind: WriteKind,
    /// The transaction's start timestamp.
    pub start_ts: u64,
    /// The value, when short enough to be inline (puts only).
    pub short_value: Option<Vec<u8>>,
    /// A transaction that started at this record's commit timestamp was rolled back: its
    /// rollback record would have had this key, so it is folded into this one.
    pub overlapped_rollback: bool,
}

impl Write {
    /// A record of `kind` for the transaction started at `start_ts`.
    pub fn new(kind: WriteKind, start_ts: u64, short_value: Option<Vec<u8>>) -> Self {
        Write { kind, start_ts, short_value, overlapped_rollback: false }
    }

    /// Encodes the record as stored.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.short_value.as_ref().map_or(0, Vec::len));
        out.push(self.kind.tag());
        put_varint(&mut out, self.start_ts);
        if let Some(v) = &self.short_value {
            out.push(b'v');
            put_bytes(&mut out, v);
        }
        if self.overlapped_rollback {
            out.push(b'R');
        }
        out
    }

    /// Decodes a stored record.
    pub fn decode(data: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(data, "write record");
        let kind = WriteKind::from_tag(d.byte()?)?;
        let start_ts = d.varint()?;
        let mut w = Write::new(kind, start_ts, None);
        while !d.is_empty() {
            match d.byte()? {
                b'v' if w.short_value.is_none() => w.short_value = Some(d.bytes()?),
                b'R' if !w.overlapped_rollback => w.overlapped_rollback = true,
                t => return Err(TxnError::corrupt(format!("write record field {t:#x}"))),
            }
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let mut w = Write::new(WriteKind::Put, 77, Some(b"value".to_vec()));
        assert_eq!(Write::decode(&w.encode()).unwrap(), w);
        w.overlapped_rollback = true;
        assert_eq!(Write::decode(&w.encode()).unwrap(), w);
        let r = Write::new(WriteKind::Rollback, u64::MAX, None);
        assert_eq!(Write::decode(&r.encode()).unwrap(), r);
        assert!(Write::decode(&[]).is_err());
        assert!(Write::decode(&[b'Q', 1]).is_err());
        assert!(Write::decode(&[b'P', 1, b'v', 9, 1]).is_err());
        assert!(Write::decode(&[b'P', 1, b'R', b'R']).is_err());
    }
}
