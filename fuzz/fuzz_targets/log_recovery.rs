//! Raft-log recovery (`core_shard::log::recovery`) on segment bytes. The first byte picks the
//! mode.
//!
//! Raw mode (even): `mode | segment_seq:u64 | has_expected:u8 | expected:u64 | from:u32 |
//! segment bytes`. Nothing panics; the valid prefix is within bounds, made of consecutive
//! block-aligned batches that each validate; rescanning the valid prefix gives the same
//! batches; `later_batches` reports only valid block-aligned batches; replaying the kept
//! batches into an index does not panic.
//!
//! Structured mode (odd): a valid segment is built from the input with the engine's encoder,
//! then truncated, a byte flipped, or a range or block zeroed at a chosen place. Recovery must
//! keep exactly the batches before the first damaged one and decide torn tail or corruption
//! (reported at the end point) as docs/raft-log.md prescribes.
#![no_main]

use core_shard::log::format::{BATCH_HEADER, BLOCK};
use core_shard::log::recovery::{later_batches, scan_segment, validate_batch, StopReason};
use libfuzzer_sys::fuzz_target;
use percore_fuzz::segment::{apply_all, build, prescribed, recover_one, Damage};
use percore_fuzz::Input;

fn raw(r: &mut Input) {
    let segment_seq = r.u64();
    let has_expected = r.u8() & 1 == 1;
    let expected = r.u64();
    let expected = has_expected.then_some(expected);
    let from = r.u32() as usize;
    let data = r.rest();

    let scan = scan_segment(data, segment_seq, expected);
    assert!(scan.stop <= data.len(), "stop {} past the end {}", scan.stop, data.len());
    let mut next_off = 0;
    let mut next_seq = expected;
    for (off, h) in &scan.batches {
        assert_eq!(*off, next_off, "batches are not consecutive");
        assert_eq!(off % BLOCK, 0);
        assert!(off + BATCH_HEADER + h.records_len as usize <= data.len(), "batch past the end");
        assert_eq!(h.segment_seq, segment_seq);
        if let Some(s) = next_seq {
            assert_eq!(h.batch_seq, s, "batch sequence not consecutive");
        }
        assert_eq!(validate_batch(&data[*off..], segment_seq).as_ref(), Ok(h));
        next_off = off + h.padded_len();
        next_seq = h.batch_seq.checked_add(1);
    }
    assert_eq!(scan.stop, next_off.min(data.len()), "stop is not the end of the last valid batch");
    if scan.stop < data.len() {
        assert_ne!(scan.reason, StopReason::EndOfFile);
    }

    // Rescanning the valid prefix gives the same batches and ends at its end.
    let again = scan_segment(&data[..scan.stop], segment_seq, expected);
    assert_eq!(again.batches, scan.batches, "rescan of the valid prefix differs");
    assert_eq!((again.stop, again.reason), (scan.stop, StopReason::EndOfFile));

    // Later batches: valid, block-aligned, in order, from `from` on.
    for start in [from % (data.len() + 1), scan.stop + 1, 0] {
        let later = later_batches(data, start, segment_seq);
        let mut prev = None;
        for &(off, seq) in &later {
            assert!(off >= start && off % BLOCK == 0 && off + BATCH_HEADER <= data.len());
            assert!(prev.is_none_or(|p| off > p));
            prev = Some(off);
            assert_eq!(validate_batch(&data[off..], segment_seq).map(|h| h.batch_seq), Ok(seq));
        }
        if start == 0 {
            for (off, h) in &scan.batches {
                assert!(later.contains(&(*off, h.batch_seq)), "scanned batch at {off} not found by later_batches");
            }
        }
    }

    let outcome = recover_one(data, segment_seq, expected);
    if let Some((at, reported)) = outcome.corruption {
        assert_eq!(at, outcome.stop);
        assert!(outcome.later.contains(&reported));
    }
    apply_all(data, &outcome.kept);
}

fn structured(r: &mut Input) {
    let built = build(r);
    let whole = recover_one(&built.bytes, built.segment_seq, built.expected);
    let all: Vec<_> = built.batches.iter().map(|p| (p.offset, p.header)).collect();
    assert_eq!(whole.kept, all, "an undamaged segment does not recover whole");
    assert_eq!(whole.corruption, None);

    let damage = Damage::read(r, built.bytes.len());
    let damaged = damage.apply(&built.bytes);
    let got = recover_one(&damaged, built.segment_seq, built.expected);
    let want = prescribed(&built, &damaged);
    assert_eq!(
        got,
        want,
        "{damage:?} of a {}-byte segment with batches {:?} (expected first {:?})",
        built.bytes.len(),
        built.batches.iter().map(|p| (p.offset, p.len, p.header.batch_seq)).collect::<Vec<_>>(),
        built.expected,
    );
    apply_all(&damaged, &got.kept);
}

fuzz_target!(|data: &[u8]| {
    let mut r = Input(data);
    if r.u8() & 1 == 0 {
        raw(&mut r);
    } else {
        structured(&mut r);
    }
});
