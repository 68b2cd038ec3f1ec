//! Rebuilding the index from the segments at open, and deciding where the log ends.
//!
//! Segments are read oldest first and their batches validated (header CRC, segment
//! sequence, consecutive batch sequence, every record's CRC). The log ends at the first
//! position where no valid next batch starts — normally zeros or stale bytes of a recycled
//! file after the last batch. Whether that end is a harmless torn tail or damage to
//! acknowledged data is decided by what lies *after* it:
//!
//! The writer has at most two batches in flight: batch `k` being synced and batch `k + 1`
//! written (batch `k + 2` is not written before `k`'s fdatasync completed and `k` was
//! acknowledged). So if batch `k` is torn, at most one valid batch of the same log can follow
//! it. Finding two or more valid batches after the end point — or one whose sequence is at
//! least `last good + 3` — proves that acknowledged data follows bad bytes: that is
//! corruption, reported with file and offset, and the engine does not open. Otherwise the
//! tail is truncated at the end point, later segments are deleted, and a warning is logged.

use std::path::{Path, PathBuf};

use super::error::{LogError, Result};
use super::format::{decode_body, parse_record, BatchHeader, DecodeError, Record, BATCH_HEADER, BLOCK};
use super::index::{EntryMeta, Index};
use super::segments::{self, Segment, Segments};

/// Why a segment scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The end of the file.
    EndOfFile,
    /// Zeros: space preallocated and never written.
    Zeroes,
    /// A valid batch of another segment (a recycled file's old contents) or an unexpected
    /// sequence.
    Stale(String),
    /// Bytes that do not verify.
    Damaged(String),
}

/// The result of scanning one segment.
#[derive(Debug)]
pub struct SegmentScan {
    /// Valid consecutive batches from the start: `(offset, header)`.
    pub batches: Vec<(usize, BatchHeader)>,
    /// Where the valid data ends.
    pub stop: usize,
    /// Why.
    pub reason: StopReason,
}

/// Validates the batch at the start of `data`: header, segment, and every record.
pub fn validate_batch(data: &[u8], segment_seq: u64) -> std::result::Result<BatchHeader, StopReason> {
    let header = match BatchHeader::parse(data) {
        Ok(h) => h,
        Err(DecodeError::Zeroes) => return Err(StopReason::Zeroes),
        Err(e) => return Err(StopReason::Damaged(format!("batch header: {e:?}"))),
    };
    if header.segment_seq != segment_seq {
        return Err(StopReason::Stale(format!("batch of segment {}", header.segment_seq)));
    }
    if header.batch_seq == u64::MAX {
        // Never written (sequences start at 1 and the engine cannot run through 2^64 batches);
        // refusing it keeps `batch_seq + 1` in range everywhere.
        return Err(StopReason::Damaged("batch sequence u64::MAX".into()));
    }
    let end = BATCH_HEADER + header.records_len as usize;
    if data.len() < end {
        return Err(StopReason::Damaged("batch extends past the end of the file".into()));
    }
    let mut pos = BATCH_HEADER;
    for i in 0..header.records {
        let (kind, body, n) =
            parse_record(&data[pos..end]).map_err(|e| StopReason::Damaged(format!("record {i}: {e:?}")))?;
        decode_body(kind, body).map_err(|e| StopReason::Damaged(format!("record {i}: {e:?}")))?;
        pos += n;
    }
    if pos != end {
        return Err(StopReason::Damaged("record lengths do not add up to the batch length".into()));
    }
    Ok(header)
}

/// Scans consecutive valid batches from the start of a segment's bytes. `expected` is the
/// sequence the first batch must have (`None`: any, for the oldest segment).
pub fn scan_segment(data: &[u8], segment_seq: u64, mut expected: Option<u64>) -> SegmentScan {
    let mut batches = Vec::new();
    let mut off = 0usize;
    let reason = loop {
        if off >= data.len() {
            break StopReason::EndOfFile;
        }
        match validate_batch(&data[off..], segment_seq) {
            Ok(h) if expected.is_none_or(|e| e == h.batch_seq) => {
                batches.push((off, h));
                expected = Some(h.batch_seq + 1);
                off += h.padded_len();
            }
            Ok(h) => break StopReason::Stale(format!("batch {} where {:?} was expected", h.batch_seq, expected)),
            Err(r) => break r,
        }
    };
    SegmentScan { batches, stop: off.min(data.len()), reason }
}

/// Valid batches of `segment_seq` at block boundaries from `from` on: `(offset, seq)`.
pub fn later_batches(data: &[u8], from: usize, segment_seq: u64) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut off = from.div_ceil(BLOCK) * BLOCK;
    while off + BATCH_HEADER <= data.len() {
        if let Ok(h) = validate_batch(&data[off..], segment_seq) {
            out.push((off, h.batch_seq));
        }
        off += BLOCK;
    }
    out
}

/// Whether valid batches found after the end point of the log prove that acknowledged data
/// follows bad bytes: `later` are their sequences in file order, `last_good` the sequence of
/// the last batch before the end point. At most two batches are in flight, so a torn batch
/// `k` can be followed by batch `k + 1` only: two or more later batches, or one with a
/// sequence of `last good + 3` or more, mean corruption. Returns the position in `later` of
/// the batch to report, `None` for a torn tail.
pub fn acknowledged_after(later: &[u64], last_good: Option<u64>) -> Option<usize> {
    let too_new = later.iter().position(|&s| last_good.is_some_and(|g| s.checked_sub(g).is_some_and(|d| d >= 3)));
    too_new.or((later.len() >= 2).then_some(1))
}

/// Applies the records of one valid batch to the index.
pub fn apply_batch(index: &mut Index, data: &[u8], header: &BatchHeader) -> std::result::Result<(), String> {
    let end = BATCH_HEADER + header.records_len as usize;
    let mut pos = BATCH_HEADER;
    while pos < end {
        let (kind, body, n) = parse_record(&data[pos..end]).map_err(|e| format!("{e:?}"))?;
        match decode_body(kind, body).map_err(|e| format!("{e:?}"))? {
            Record::Append(a) => {
                let metas = a.entries.iter().map(|&(term, _)| EntryMeta {
                    term,
                    batch: header.batch_seq,
                    rec_off: pos as u32,
                    rec_len: n as u32,
                    data: None,
                });
                index.apply_append(
                    a.region,
                    a.first_index,
                    metas,
                    a.hard_state.map(|h| (h, header.batch_seq)),
                    true,
                )?;
            }
            Record::Compact { region, upto } => {
                let freed = index.regions.entry(region).or_default().compact(upto);
                index.cached_dropped(freed);
            }
            Record::Remove { region } => {
                index.regions.remove(&region);
            }
        }
        pos += n;
    }
    Ok(())
}

/// What recovery found and did.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Regions with a log, ascending.
    pub regions: Vec<u64>,
    /// Segments replayed.
    pub segments: usize,
    /// Batches replayed.
    pub batches: u64,
    /// Where a torn tail was cut: file, offset, bytes discarded.
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Files removed: leftovers of an interrupted purge, segments after the end of the log.
    pub removed: Vec<PathBuf>,
}

/// The state recovery hands to the engine.
pub struct Recovered {
    /// Sealed segments (none is written again).
    pub segments: Segments,
    /// Sequence of the next batch.
    pub next_batch: u64,
    /// Sequence of the next segment.
    pub next_segment: u64,
    /// Recycled files available.
    pub recycled: Vec<PathBuf>,
    /// What happened.
    pub report: RecoveryReport,
}

/// A point where the valid data of a segment ends, and valid batches found after it.
struct End {
    seg: u64,
    path: PathBuf,
    offset: usize,
    reason: StopReason,
    last_good: Option<u64>,
    later: Vec<(PathBuf, usize, u64)>,
}

/// Replays every segment of `dir` into `index`.
pub async fn recover(dir: &Path, index: &mut Index) -> Result<Recovered> {
    let listing = segments::list(dir)?;
    let watermark = segments::read_purged(dir)?;
    let mut report = RecoveryReport::default();
    let mut segs = Segments::default();
    let mut expected: Option<u64> = None;
    // The stop point of the previous segment: the end of the log unless the next segment
    // continues it (a rotation).
    let mut candidate: Option<End> = None;
    let mut end: Option<End> = None;
    let mut after_end: Vec<u64> = Vec::new();
    for &seq in &listing.segments {
        let path = dir.join(segments::segment_name(seq));
        if seq < watermark {
            // A purge recorded its watermark but crashed before deleting this file.
            std::fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
            report.removed.push(path);
            continue;
        }
        let file = segments::open_segment(dir, seq).await?;
        let data = segments::read_all(&file, &path).await?;
        if let Some(e) = end.as_mut() {
            e.later.extend(later_batches(&data, 0, seq).into_iter().map(|(o, s)| (path.clone(), o, s)));
            after_end.push(seq);
            let _ = file.close().await;
            continue;
        }
        let mut scan = scan_segment(&data, seq, expected);
        if scan.batches.is_empty() && !matches!(scan.reason, StopReason::Damaged(_)) {
            if later_batches(&data, 1, seq).is_empty() {
                // An empty segment: prepared but never written, or cut to nothing by an
                // earlier recovery. It is no part of the log.
                let _ = file.close().await;
                std::fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
                report.removed.push(path);
                continue;
            }
            scan.reason = StopReason::Damaged(format!("first batch missing ({:?})", scan.reason));
        }
        if let Some(c) = candidate.take() {
            let continues =
                !scan.batches.is_empty() && (expected.is_some() || !matches!(c.reason, StopReason::Damaged(_)));
            if !continues {
                let damaged_here = scan.batches.is_empty()
                    && matches!(scan.reason, StopReason::Damaged(_))
                    && !matches!(c.reason, StopReason::Damaged(_));
                if damaged_here {
                    // The previous segment ended cleanly; the bad bytes are this segment's
                    // first batch: the log ends here, at offset 0.
                    let mut later = c.later;
                    later.extend(later_batches(&data, 1, seq).into_iter().map(|(o, s)| (path.clone(), o, s)));
                    end = Some(End {
                        seg: seq,
                        path: path.clone(),
                        offset: 0,
                        reason: scan.reason,
                        last_good: c.last_good,
                        later,
                    });
                    segs.insert(Segment {
                        seq,
                        path: path.clone(),
                        file: std::rc::Rc::new(file),
                        capacity: data.len() as u64,
                        written: 0,
                        first_batch: None,
                        offsets: Vec::new(),
                    });
                    continue;
                }
                let mut e = c;
                e.later.extend(later_batches(&data, 0, seq).into_iter().map(|(o, s)| (path.clone(), o, s)));
                end = Some(e);
                after_end.push(seq);
                let _ = file.close().await;
                continue;
            }
            if let Some((file, off, s)) = c.later.first() {
                return Err(LogError::Corruption {
                    file: c.path.clone(),
                    offset: c.offset as u64,
                    reason: format!("{:?}, but batch {s} follows in {} at offset {off}", c.reason, file.display()),
                });
            }
        }
        let mut seg = Segment {
            seq,
            path: path.clone(),
            file: std::rc::Rc::new(file),
            capacity: data.len() as u64,
            written: scan.stop as u64,
            first_batch: None,
            offsets: Vec::new(),
        };
        for (off, h) in &scan.batches {
            apply_batch(index, &data[*off..], h).map_err(|reason| LogError::Corruption {
                file: path.clone(),
                offset: *off as u64,
                reason: format!("batch {} does not apply: {reason}", h.batch_seq),
            })?;
            seg.place(h.batch_seq, *off as u64, h.padded_len() as u64);
            report.batches += 1;
            expected = Some(h.batch_seq + 1);
        }
        report.segments += 1;
        let later = later_batches(&data, scan.stop + 1, seq).into_iter().map(|(o, s)| (path.clone(), o, s)).collect();
        candidate = Some(End {
            seg: seq,
            path: path.clone(),
            offset: scan.stop,
            reason: scan.reason,
            last_good: expected.map(|e| e - 1),
            later,
        });
        segs.insert(seg);
    }
    let next_segment = listing.segments.last().map_or(1, |s| s + 1).max(watermark);
    if let Some(e) = end.or(candidate) {
        check_end(&e)?;
        finish_tail(dir, &e, &after_end, &mut segs, &mut report).await?;
    }
    report.regions = index.regions.keys().copied().collect();
    report.regions.sort_unstable();
    Ok(Recovered {
        segments: segs,
        next_batch: expected.unwrap_or(1),
        next_segment,
        recycled: listing.recycled,
        report,
    })
}

/// Fails if acknowledged batches follow the end point.
fn check_end(e: &End) -> Result<()> {
    let seqs: Vec<u64> = e.later.iter().map(|&(_, _, s)| s).collect();
    if let Some((file, off, seq)) = acknowledged_after(&seqs, e.last_good).and_then(|i| e.later.get(i)) {
        return Err(LogError::Corruption {
            file: e.path.clone(),
            offset: e.offset as u64,
            reason: format!(
                "{:?}, but acknowledged batch {seq} follows in {} at offset {off}",
                e.reason,
                file.display()
            ),
        });
    }
    Ok(())
}

/// Cuts the log at the end point: truncate that segment, delete the ones after it.
async fn finish_tail(
    dir: &Path,
    e: &End,
    after: &[u64],
    segs: &mut Segments,
    report: &mut RecoveryReport,
) -> Result<()> {
    if let Some(seg) = segs.by_seq.get_mut(&e.seg) {
        let len = seg.file.file_size().await.map_err(|err| LogError::io("stat", &e.path, err))?;
        if (e.offset as u64) < len {
            if let StopReason::Damaged(why) = &e.reason {
                tracing::warn!(
                    file = %e.path.display(),
                    offset = e.offset,
                    discarded = len - e.offset as u64,
                    "raft log: torn tail truncated ({why})"
                );
                report.truncated = Some((e.path.clone(), e.offset as u64, len - e.offset as u64));
            }
            seg.file.truncate(e.offset as u64).await.map_err(|err| LogError::io("truncate", &e.path, err))?;
            seg.file.fdatasync().await.map_err(|err| LogError::io("fdatasync", &e.path, err))?;
            seg.capacity = e.offset as u64;
        }
    }
    for &seq in after {
        let path = dir.join(segments::segment_name(seq));
        std::fs::remove_file(&path).map_err(|err| LogError::io("remove", &path, err))?;
        report.removed.push(path);
    }
    segments::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::super::format::{align_up, put_append, Entry};
    use super::*;

    /// One batch of one append of `count` entries from `first_index`, padded.
    fn batch(batch_seq: u64, segment_seq: u64, first_index: u64, count: u64) -> Vec<u8> {
        let mut buf = vec![0u8; BATCH_HEADER];
        let entries: Vec<Entry> =
            (0..count).map(|i| Entry { index: first_index.wrapping_add(i), term: 1, data: "x".into() }).collect();
        put_append(&mut buf, 1, None, &entries);
        let records_len = (buf.len() - BATCH_HEADER) as u32;
        BatchHeader { batch_seq, segment_seq, records_len, records: 1 }.write_into(&mut buf);
        buf.resize(align_up(buf.len()), 0);
        buf
    }

    /// A valid batch of sequence u64::MAX made `scan_segment` overflow computing the next
    /// sequence (a panic with overflow checks on; reachable from the `log_recovery` fuzz
    /// target's raw mode, fixed with the index overflow it found).
    #[test]
    fn last_sequence_number_is_refused() {
        let data = [batch(u64::MAX - 1, 3, 1, 1), batch(u64::MAX, 3, 2, 1)].concat();
        let scan = scan_segment(&data, 3, None);
        assert_eq!(scan.batches.len(), 1);
        assert_eq!((scan.stop, &scan.reason), (BLOCK, &StopReason::Damaged("batch sequence u64::MAX".into())));
        assert!(later_batches(&data, 1, 3).is_empty());
    }

    /// The torn-tail rule near the top of the sequence range (`last good + 3` overflowed).
    #[test]
    fn acknowledged_after_does_not_overflow() {
        let g = u64::MAX - 2;
        assert_eq!(acknowledged_after(&[u64::MAX - 1], Some(g)), None);
        assert_eq!(acknowledged_after(&[g + 2], Some(g)), None);
        assert_eq!(acknowledged_after(&[5, 6], Some(3)), Some(1));
        assert_eq!(acknowledged_after(&[6], Some(3)), Some(0));
        assert_eq!(acknowledged_after(&[5], Some(3)), None);
        assert_eq!(acknowledged_after(&[9], None), None);
        assert_eq!(acknowledged_after(&[9, 10], None), Some(1));
        assert_eq!(acknowledged_after(&[], Some(u64::MAX)), None);
    }

    /// Found by the `log_recovery` fuzz target: replaying an append whose entries pass
    /// u64::MAX overflowed the index; it is refused (recovery reports corruption).
    #[test]
    fn append_past_the_last_index_does_not_apply() {
        let data = batch(1, 3, u64::MAX - 1, 3);
        let h = validate_batch(&data, 3).unwrap();
        let mut index = Index::new(0);
        assert!(apply_batch(&mut index, &data, &h).unwrap_err().contains("pass u64::MAX"));
        let data = batch(2, 3, u64::MAX - 1, 2);
        let h = validate_batch(&data, 3).unwrap();
        apply_batch(&mut index, &data, &h).unwrap();
        assert_eq!(index.regions[&1].last_index(), u64::MAX);
    }
}
