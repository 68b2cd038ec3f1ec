//! The raft log's on-disk format: records, batches, segments.
//!
//! ```text
//! segment file  = batch* , zeros to the end (files are preallocated, zero-filled)
//! batch         = header record , record* , zero padding to the next 4 KiB boundary
//! record        = len:u32 | crc:u32 | kind:u8 | body[len]        (little endian)
//!                 crc = CRC32C(kind | body)
//! header body   = batch_seq:u64 | segment_seq:u64 | records_len:u32 | records:u32
//! append body   = region:u64 | flags:u8 | [term:u64 vote:u64 commit:u64]? |
//!                 first_index:u64 | count:u32 | (term:u64 | len:u32 | data[len])*
//! compact body  = region:u64 | upto:u64
//! remove body   = region:u64
//! ```
//!
//! Every batch starts on a 4 KiB boundary and is padded to one, so that each group-commit
//! write is one aligned O_DIRECT write and no durable byte is ever written again. Batch
//! sequence numbers increase by one across segments; the header carries its segment's
//! sequence so that bytes of another file can never pass as this one's.

/// The unit of alignment of batches (and of O_DIRECT I/O).
pub const BLOCK: usize = 4096;
/// Bytes of a record header: length, CRC, kind.
pub const RECORD_HEADER: usize = 9;
/// Bytes of the batch-header record's body.
pub const BATCH_BODY: usize = 24;
/// Bytes of the batch-header record.
pub const BATCH_HEADER: usize = RECORD_HEADER + BATCH_BODY;

/// Record kinds. Values are part of the format: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// Opens a batch.
    Batch = 1,
    /// Entries and/or a hard state of one region.
    Append = 2,
    /// Drops a region's entries below an index.
    Compact = 3,
    /// Drops a region entirely.
    Remove = 4,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordKind::Batch),
            2 => Some(RecordKind::Append),
            3 => Some(RecordKind::Compact),
            4 => Some(RecordKind::Remove),
            _ => None,
        }
    }
}

/// Raft's persistent hard state of a region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Vote in the current term (0 = none).
    pub vote: u64,
    /// Highest index known committed.
    pub commit: u64,
}

/// A log entry as the engine stores it: raft's index and term, and opaque data (the
/// raftstore encodes the entry type, context and payload into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Raft log index.
    pub index: u64,
    /// Raft term.
    pub term: u64,
    /// Opaque payload.
    pub data: bytes::Bytes,
}

/// Why bytes do not form a valid record or batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header or length says.
    Truncated,
    /// All-zero header: the end of written data in a preallocated segment.
    Zeroes,
    /// The CRC does not match.
    BadCrc,
    /// Unknown kind byte.
    BadKind(u8),
    /// The body does not parse as its kind.
    BadBody(&'static str),
}

/// Appends a record of `kind` whose body is written by `body` to `out`.
pub fn put_record(out: &mut Vec<u8>, kind: RecordKind, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER]);
    out[start + 8] = kind as u8;
    body(out);
    let len = (out.len() - start - RECORD_HEADER) as u32;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads one record at the start of `buf`: its kind, body and total length.
pub fn parse_record(buf: &[u8]) -> Result<(RecordKind, &[u8], usize), DecodeError> {
    if buf.len() < RECORD_HEADER {
        return Err(DecodeError::Truncated);
    }
    if buf[..RECORD_HEADER].iter().all(|&b| b == 0) {
        return Err(DecodeError::Zeroes);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let total = RECORD_HEADER.checked_add(len).ok_or(DecodeError::Truncated)?;
    if buf.len() < total {
        return Err(DecodeError::Truncated);
    }
    if crc32c::crc32c(&buf[8..total]) != crc {
        return Err(DecodeError::BadCrc);
    }
    let kind = RecordKind::from_u8(buf[8]).ok_or(DecodeError::BadKind(buf[8]))?;
    Ok((kind, &buf[RECORD_HEADER..total], total))
}

/// The header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Sequence number of the batch in the whole log.
    pub batch_seq: u64,
    /// Sequence number of the segment the batch was written to.
    pub segment_seq: u64,
    /// Bytes of records after the header.
    pub records_len: u32,
    /// Number of records after the header.
    pub records: u32,
}

impl BatchHeader {
    /// The batch's size on disk: header, records and padding.
    pub fn padded_len(&self) -> usize {
        align_up(BATCH_HEADER + self.records_len as usize)
    }

    /// Writes the header record into the first [`BATCH_HEADER`] bytes of `out`.
    pub fn write_into(&self, out: &mut [u8]) {
        let mut v = Vec::with_capacity(BATCH_HEADER);
        put_record(&mut v, RecordKind::Batch, |b| {
            b.extend_from_slice(&self.batch_seq.to_le_bytes());
            b.extend_from_slice(&self.segment_seq.to_le_bytes());
            b.extend_from_slice(&self.records_len.to_le_bytes());
            b.extend_from_slice(&self.records.to_le_bytes());
        });
        out[..BATCH_HEADER].copy_from_slice(&v);
    }

    /// Parses a batch header record at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let (kind, body, _) = parse_record(buf)?;
        if kind != RecordKind::Batch {
            return Err(DecodeError::BadBody("batch does not start with a header"));
        }
        let mut r = Reader(body);
        let h = BatchHeader { batch_seq: r.u64()?, segment_seq: r.u64()?, records_len: r.u32()?, records: r.u32()? };
        r.finish()?;
        Ok(h)
    }
}

/// Rounds up to a multiple of [`BLOCK`].
pub fn align_up(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

/// Encodes an append record.
pub fn put_append(out: &mut Vec<u8>, region: u64, hs: Option<&HardState>, entries: &[Entry]) {
    put_record(out, RecordKind::Append, |b| {
        b.extend_from_slice(&region.to_le_bytes());
        match hs {
            Some(hs) => {
                b.push(1);
                b.extend_from_slice(&hs.term.to_le_bytes());
                b.extend_from_slice(&hs.vote.to_le_bytes());
                b.extend_from_slice(&hs.commit.to_le_bytes());
            }
            None => b.push(0),
        }
        let first = entries.first().map_or(0, |e| e.index);
        b.extend_from_slice(&first.to_le_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&e.term.to_le_bytes());
            b.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            b.extend_from_slice(&e.data);
        }
    });
}

/// Encodes a compact record.
pub fn put_compact(out: &mut Vec<u8>, region: u64, upto: u64) {
    put_record(out, RecordKind::Compact, |b| {
        b.extend_from_slice(&region.to_le_bytes());
        b.extend_from_slice(&upto.to_le_bytes());
    });
}

/// Encodes a remove record.
pub fn put_remove(out: &mut Vec<u8>, region: u64) {
    put_record(out, RecordKind::Remove, |b| b.extend_from_slice(&region.to_le_bytes()));
}

/// A decoded append record; entry data borrows the record's bytes.
#[derive(Debug)]
pub struct AppendRecord<'a> {
    /// The region.
    pub region: u64,
    /// The hard state, if the append carried one.
    pub hard_state: Option<HardState>,
    /// Index of the first entry.
    pub first_index: u64,
    /// `(term, data)` of each entry, from `first_index` on.
    pub entries: Vec<(u64, &'a [u8])>,
}

/// A decoded record body.
#[derive(Debug)]
pub enum Record<'a> {
    /// See [`AppendRecord`].
    Append(AppendRecord<'a>),
    /// Entries of `region` below `upto` are gone.
    Compact {
        /// The region.
        region: u64,
        /// First index kept.
        upto: u64,
    },
    /// The region is gone.
    Remove {
        /// The region.
        region: u64,
    },
}

/// Decodes the body of a record of `kind` (not a batch header).
pub fn decode_body(kind: RecordKind, body: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut r = Reader(body);
    let rec = match kind {
        RecordKind::Append => {
            let region = r.u64()?;
            let hard_state = match r.u8()? {
                0 => None,
                1 => Some(HardState { term: r.u64()?, vote: r.u64()?, commit: r.u64()? }),
                _ => return Err(DecodeError::BadBody("hard-state flag")),
            };
            let first_index = r.u64()?;
            let count = r.u32()? as usize;
            // Each entry takes at least 12 bytes: bound the allocation by what is there.
            if count > r.0.len() / 12 {
                return Err(DecodeError::BadBody("entry count exceeds record"));
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let term = r.u64()?;
                let len = r.u32()? as usize;
                entries.push((term, r.bytes(len)?));
            }
            Record::Append(AppendRecord { region, hard_state, first_index, entries })
        }
        RecordKind::Compact => Record::Compact { region: r.u64()?, upto: r.u64()? },
        RecordKind::Remove => Record::Remove { region: r.u64()? },
        RecordKind::Batch => return Err(DecodeError::BadBody("nested batch header")),
    };
    r.finish()?;
    Ok(rec)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::BadBody("short body"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::BadBody("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { index, term, data: bytes::Bytes::copy_from_slice(data) }
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let hs = HardState { term: 3, vote: 2, commit: 9 };
        put_append(&mut buf, 7, Some(&hs), &[entry(10, 3, b"a"), entry(11, 3, b"")]);
        put_compact(&mut buf, 7, 10);
        put_remove(&mut buf, 8);
        let (kind, body, n1) = parse_record(&buf).unwrap();
        match decode_body(kind, body).unwrap() {
            Record::Append(a) => {
                assert_eq!((a.region, a.hard_state, a.first_index), (7, Some(hs), 10));
                assert_eq!(a.entries, vec![(3, &b"a"[..]), (3, &b""[..])]);
            }
            other => panic!("{other:?}"),
        }
        let (kind, body, n2) = parse_record(&buf[n1..]).unwrap();
        assert!(matches!(decode_body(kind, body).unwrap(), Record::Compact { region: 7, upto: 10 }));
        let (kind, body, n3) = parse_record(&buf[n1 + n2..]).unwrap();
        assert!(matches!(decode_body(kind, body).unwrap(), Record::Remove { region: 8 }));
        assert_eq!(n1 + n2 + n3, buf.len());
    }

    #[test]
    fn batch_header_round_trips() {
        let h = BatchHeader { batch_seq: 42, segment_seq: 3, records_len: 5000, records: 7 };
        let mut buf = vec![0u8; BATCH_HEADER];
        h.write_into(&mut buf);
        assert_eq!(BatchHeader::parse(&buf).unwrap(), h);
        assert_eq!(h.padded_len(), 8192);
    }

    #[test]
    fn damaged_records_are_rejected() {
        let mut buf = Vec::new();
        put_append(&mut buf, 1, None, &[entry(1, 1, b"hello")]);
        for cut in 0..buf.len() {
            assert!(parse_record(&buf[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let r = parse_record(&bad);
            // A flip in the length field may make the record look longer (truncated) or shorter
            // (CRC over fewer bytes): either way it must not parse.
            assert!(r.is_err(), "flip at {i} accepted");
        }
        assert_eq!(parse_record(&[0u8; 64]), Err(DecodeError::Zeroes));
    }

    #[test]
    fn bodies_never_over_allocate() {
        // A count that claims far more entries than the body holds.
        let mut buf = Vec::new();
        put_record(&mut buf, RecordKind::Append, |b| {
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(0);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&u32::MAX.to_le_bytes());
        });
        let (kind, body, _) = parse_record(&buf).unwrap();
        assert!(decode_body(kind, body).is_err());
    }
}
