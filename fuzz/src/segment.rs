//! Raft-log segments for the `log_recovery` target: valid segments built from fuzzer input
//! with the engine's own encoder (`core_shard::log::format`), damage applied at a chosen
//! place, recovery of one segment composed from the functions `recover` uses, and the result
//! docs/raft-log.md ("Recovery: torn tail or corruption?") prescribes.

use core_shard::log::format::{
    align_up, put_append, put_compact, put_remove, BatchHeader, Entry, HardState, BATCH_HEADER, BLOCK,
};
use core_shard::log::index::Index;
use core_shard::log::recovery::{acknowledged_after, apply_batch, later_batches, scan_segment, StopReason};

use crate::{Input, Output};

/// A batch written into a built segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Offset in the segment (a multiple of [`BLOCK`]).
    pub offset: usize,
    /// Bytes of header and records, without the padding.
    pub len: usize,
    /// Its header.
    pub header: BatchHeader,
}

/// A valid segment and where its batches are.
#[derive(Debug, Clone)]
pub struct Built {
    /// The segment's sequence.
    pub segment_seq: u64,
    /// The sequence recovery expects of the first batch (`None`: the oldest segment).
    pub expected: Option<u64>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The batches of this segment, in order.
    pub batches: Vec<Placed>,
}

/// Encodes one batch at the end of `out` as the engine's writer does: a header record, the
/// records written by `records` (which returns how many it wrote), zero padding to a block.
pub fn put_batch(
    out: &mut Vec<u8>,
    batch_seq: u64,
    segment_seq: u64,
    records: impl FnOnce(&mut Vec<u8>) -> u32,
) -> Placed {
    let mut buf = vec![0u8; BATCH_HEADER];
    let count = records(&mut buf);
    let header = BatchHeader { batch_seq, segment_seq, records_len: (buf.len() - BATCH_HEADER) as u32, records: count };
    header.write_into(&mut buf);
    let offset = out.len();
    let len = buf.len();
    out.extend_from_slice(&buf);
    out.resize(offset + align_up(len), 0);
    Placed { offset, len, header }
}

/// Appends one record chosen by the input: an append (with or without hard state, 0-3
/// entries of arbitrary size), a compact or a remove.
fn put_any_record(r: &mut Input, buf: &mut Vec<u8>) {
    let kind = r.u8() % 4;
    let region = u64::from(r.u8() % 4) + 1;
    match kind {
        0 | 1 => {
            let hs = (r.u8() & 1 == 1).then(|| HardState { term: r.u64(), vote: r.u64(), commit: r.u64() });
            let first = r.u64();
            let count = r.u8() % 4;
            let mut entries = Vec::new();
            for i in 0..u64::from(count) {
                let term = r.u64();
                // Up to ~10 KiB, so batches span blocks: up to 255 bytes from the input, then
                // a filler byte.
                let len = usize::from(r.u16()) % 10_000;
                let fill = r.u8();
                let head = usize::from(r.u8()).min(len);
                let mut data = r.take(head).to_vec();
                data.resize(len, fill);
                entries.push(Entry { index: first.wrapping_add(i), term, data: data.into() });
            }
            put_append(buf, region, hs.as_ref(), &entries);
        }
        2 => put_compact(buf, region, r.u64()),
        _ => put_remove(buf, region),
    }
}

/// Builds a valid segment from the input: 1-6 batches of 1-4 records with consecutive
/// sequences, then nothing (cut by `close()`), zero blocks (preallocated space) or valid
/// batches of another segment (a recycled file's old contents).
pub fn build(r: &mut Input) -> Built {
    let segment_seq = r.u64();
    // Valid sequences run from 1 to u64::MAX - 1 (the engine starts at 1, adds one per batch).
    let first_seq = r.u64().clamp(1, u64::MAX - 1);
    let expected = (r.u8() & 1 == 1).then_some(first_seq);
    let n = (1 + u64::from(r.u8() % 6)).min(u64::MAX - first_seq);
    let mut bytes = Vec::new();
    let mut batches = Vec::new();
    for i in 0..n {
        let records = 1 + r.u8() % 4;
        batches.push(put_batch(&mut bytes, first_seq + i, segment_seq, |buf| {
            for _ in 0..records {
                put_any_record(r, buf);
            }
            u32::from(records)
        }));
    }
    match r.u8() % 3 {
        0 => {}
        1 => bytes.resize(bytes.len() + BLOCK * usize::from(1 + r.u8() % 2), 0),
        _ => {
            let stale_seg = segment_seq.wrapping_add(1 + u64::from(r.u8()));
            for _ in 0..1 + r.u8() % 2 {
                let seq = r.u64();
                put_batch(&mut bytes, seq, stale_seg, |buf| {
                    put_any_record(r, buf);
                    1
                });
            }
        }
    }
    Built { segment_seq, expected, bytes, batches }
}

/// Damage done to a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// None.
    None,
    /// The file ends at this offset.
    Truncate(usize),
    /// One byte changed.
    Flip(usize, u8),
    /// A range of bytes zeroed.
    Zero(usize, usize),
}

impl Damage {
    /// Reads a damage for a file of `len` bytes (`len > 0`).
    pub fn read(r: &mut Input, len: usize) -> Damage {
        // Kind 0 (also what an exhausted input reads) is a damage: undamaged segments are
        // the rarer case worth fuzzing.
        let kind = r.u8() % 5;
        let at = r.u32() as usize;
        match kind {
            4 => Damage::None,
            1 => Damage::Truncate(at % (len + 1)),
            2 => Damage::Flip(at % len, r.u8().max(1)),
            3 => {
                let start = at % len;
                Damage::Zero(start, (start + 1 + usize::from(r.u16()) % (2 * BLOCK)).min(len))
            }
            // 0: a lost block of a multi-block write.
            _ => {
                let start = at % len / BLOCK * BLOCK;
                Damage::Zero(start, (start + BLOCK).min(len))
            }
        }
    }

    /// The damaged copy of `bytes`.
    pub fn apply(self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        match self {
            Damage::None => {}
            Damage::Truncate(at) => out.truncate(at),
            Damage::Flip(at, mask) => out[at] ^= mask,
            Damage::Zero(a, b) => out[a..b].fill(0),
        }
        out
    }
}

/// What recovery makes of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The batches kept: `(offset, header)`.
    pub kept: Vec<(usize, BatchHeader)>,
    /// Where the log ends (the truncation point); 0 for an empty segment.
    pub stop: usize,
    /// Valid batches of this segment found after the end point: `(offset, sequence)`.
    pub later: Vec<(usize, u64)>,
    /// `Some((offset of the end point, later batch reported))`: corruption, the engine does
    /// not open. `None`: a torn tail (or nothing) cut at `stop`.
    pub corruption: Option<(usize, (usize, u64))>,
}

/// Recovers one segment as `recover` does for the oldest segment (`expected == None`) or one
/// that continues the log (`expected` = the next batch sequence): scan, the empty-segment
/// rule, valid batches after the end point, and the torn-tail-or-corruption decision.
pub fn recover_one(data: &[u8], segment_seq: u64, expected: Option<u64>) -> Outcome {
    let scan = scan_segment(data, segment_seq, expected);
    let damaged = matches!(scan.reason, StopReason::Damaged(_));
    if scan.batches.is_empty() && !damaged && later_batches(data, 1, segment_seq).is_empty() {
        // An empty segment: removed, no part of the log.
        return Outcome { kept: Vec::new(), stop: 0, later: Vec::new(), corruption: None };
    }
    let later = later_batches(data, scan.stop + 1, segment_seq);
    let last_good = match scan.batches.last() {
        Some((_, h)) => Some(h.batch_seq),
        None => expected.and_then(|e| e.checked_sub(1)),
    };
    let seqs: Vec<u64> = later.iter().map(|&(_, s)| s).collect();
    let corruption = acknowledged_after(&seqs, last_good).map(|i| (scan.stop, later[i]));
    Outcome { kept: scan.batches, stop: scan.stop, later, corruption }
}

/// The outcome docs/raft-log.md prescribes for `built` damaged into `damaged`: the batches
/// before the first damaged one are kept; the valid batches after it are the undamaged ones
/// of this segment; two or more of them, or one with a sequence of `last good + 3` or more,
/// are corruption reported at the end point.
pub fn prescribed(built: &Built, damaged: &[u8]) -> Outcome {
    let intact = |p: &Placed| damaged.get(p.offset..p.offset + p.len) == built.bytes.get(p.offset..p.offset + p.len);
    let d = built.batches.iter().position(|p| !intact(p)).unwrap_or(built.batches.len());
    let kept: Vec<(usize, BatchHeader)> = built.batches[..d].iter().map(|p| (p.offset, p.header)).collect();
    let end = match built.batches.get(d) {
        Some(p) => p.offset,
        None => built.batches.last().map_or(0, |p| p.offset + align_up(p.len)),
    };
    let stop = end.min(damaged.len());
    let later: Vec<(usize, u64)> =
        built.batches.iter().skip(d + 1).filter(|p| intact(p)).map(|p| (p.offset, p.header.batch_seq)).collect();
    if kept.is_empty() && later.is_empty() {
        // Nothing to keep: an empty segment or a torn first batch, cut to nothing either way.
        return Outcome { kept, stop: 0, later, corruption: None };
    }
    let last_good = match kept.last() {
        Some((_, h)) => Some(h.batch_seq),
        None => built.expected.map(|e| e - 1),
    };
    let too_new = later.iter().find(|&&(_, s)| last_good.is_some_and(|g| s - g >= 3));
    let reported = too_new.or(later.get(1)).copied();
    Outcome { kept, stop, later, corruption: reported.map(|b| (stop, b)) }
}

/// Applies the kept batches to a fresh index as recovery does. Errors (appends that leave a
/// gap) are allowed; panics are not.
pub fn apply_all(data: &[u8], kept: &[(usize, BatchHeader)]) -> Index {
    let mut index = Index::new(0);
    for (off, h) in kept {
        let _ = apply_batch(&mut index, &data[*off..], h);
    }
    for r in index.regions.values() {
        let _ = (r.last_index(), r.oldest_batch(), r.get(r.first));
    }
    index
}

/// Writes a structured-mode input (mode byte 1) of `n` batches, each one append with a hard
/// state and two entries, the second batch and later ones spanning blocks; `rest` selects the
/// tail and the damage (see [`build`] and [`Damage::read`]).
pub fn structured_seed(segment_seq: u64, first_seq: u64, continues: bool, n: u8, rest: &[u8]) -> Vec<u8> {
    let mut o = Output::default();
    o.u8(1).u64(segment_seq).u64(first_seq).u8(u8::from(continues)).u8(n - 1);
    for i in 0..n {
        // records = 1; kind = append; region; hard state.
        o.u8(0).u8(0).u8(i % 4).u8(1).u64(5).u64(1).u64(10 * u64::from(i));
        // first index, two entries: (term, len, fill, head length, head).
        o.u64(10 * u64::from(i) + 1).u8(2);
        o.u64(5).u16(100 + 3000 * u16::from(i)).u8(0xab).u8(10).bytes(b"entry data");
        o.u64(5).u16(0).u8(0).u8(0);
    }
    o.bytes(rest);
    o.0
}
