//! Crash test of the raft log engine: after acknowledged appends, damage the tail of the
//! last segment (truncate at a random byte, flip bytes in the last batches) and reopen.
//! Recovery must yield exactly a prefix of the acknowledged appends — never garbage — and
//! damage before the tail must be refused as corruption naming the file and offset.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use core_shard::log::recovery::scan_segment;
use core_shard::log::{Entry, LogEngine, LogError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The acknowledged appends, in order: (region, index, payload length).
type History = Vec<(u64, u64, usize)>;

async fn write_history(dir: &Path, rng: &mut StdRng, n: usize) -> History {
    let (log, _) = common::open(dir, &common::small_config()).await;
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    let mut history = Vec::new();
    let mut i = 0;
    while i < n {
        // A wave of concurrent appends shares fdatasyncs; await them all before the next.
        let wave = rng.gen_range(1..8).min(n - i);
        let mut pending = Vec::new();
        for _ in 0..wave {
            let region = rng.gen_range(1..=4u64);
            let index = *next.entry(region).and_modify(|x| *x += 1).or_insert(1);
            let len = rng.gen_range(0..700);
            let e = Entry { index, term: 1, data: common::payload(region, index, 0, len) };
            pending.push(log.append(region, vec![e], None).unwrap());
            history.push((region, index, len));
        }
        for p in pending {
            p.await.unwrap();
        }
        i += wave;
    }
    log.close().await.unwrap();
    history
}

/// Segment files with data, newest first: (path, segment seq, batch offsets and lengths).
/// A segment file with data: path, sequence, `(offset, padded length)` of each batch.
type DataSegment = (PathBuf, u64, Vec<(usize, usize)>);

fn data_segments(dir: &Path) -> Vec<DataSegment> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).unwrap() {
        let path = ent.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(seq) = name.strip_suffix(".rlog").and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let data = std::fs::read(&path).unwrap();
        let scan = scan_segment(&data, seq, None);
        if !scan.batches.is_empty() {
            let batches = scan.batches.iter().map(|(off, h)| (*off, h.padded_len())).collect();
            out.push((path, seq, batches));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    out
}

/// Checks that the reopened log holds exactly a prefix of `history`; returns its length.
async fn assert_prefix(log: &LogEngine, history: &History) -> usize {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for region in 1..=4u64 {
        let n = log.entry_count(region) as u64;
        if n > 0 {
            assert_eq!(log.first_index(region), Some(1));
            let got = log.entries(region, 1, n + 1, None).await.unwrap();
            for e in got {
                let len = history.iter().find(|h| h.0 == region && h.1 == e.index).expect("entry was appended").2;
                assert_eq!(
                    e.data,
                    common::payload(region, e.index, 0, len),
                    "garbage in region {region} entry {}",
                    e.index
                );
            }
        }
        counts.insert(region, n);
    }
    // A prefix of length k contains, for every region, exactly its first `count` appends.
    let k = counts.values().sum::<u64>() as usize;
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for &(region, _, _) in &history[..k] {
        *seen.entry(region).or_default() += 1;
    }
    for (region, n) in &counts {
        assert_eq!(seen.get(region).copied().unwrap_or(0), *n, "region {region}: not a prefix of the history");
    }
    k
}

#[test]
fn truncated_tail_recovers_a_prefix() {
    common::run(|| async {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..25 {
            let dir = tempfile::tempdir().unwrap();
            let history = write_history(dir.path(), &mut rng, 150).await;
            let segs = data_segments(dir.path());
            let (path, _, batches) = &segs[0];
            let end = batches.last().map(|(o, l)| o + l).unwrap();
            let cut = rng.gen_range(0..=end) as u64;
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let (log, report) = common::open(dir.path(), &common::small_config()).await;
            let k = assert_prefix(&log, &history).await;
            assert!(k <= history.len(), "round {round}");
            // The log keeps working after recovery, and survives another restart.
            let region = 9;
            log.append(region, vec![Entry { index: 1, term: 2, data: "after".into() }], None).unwrap().await.unwrap();
            log.close().await.unwrap();
            let (log, _) = common::open(dir.path(), &common::small_config()).await;
            assert_eq!(assert_prefix(&log, &history).await, k, "round {round}: {report:?}");
            assert_eq!(log.entries(region, 1, 2, None).await.unwrap()[0].data, "after");
            log.close().await.unwrap();
        }
    });
}

#[test]
fn damaged_last_batches_recover_a_prefix() {
    common::run(|| async {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let history = write_history(dir.path(), &mut rng, 150).await;
            let segs = data_segments(dir.path());
            let (path, _, batches) = &segs[0];
            // Damage one of the last two batches: the in-flight window of the writer.
            let which = batches.len() - 1 - rng.gen_range(0..batches.len().min(2));
            let (off, len) = batches[which];
            let mut data = std::fs::read(path).unwrap();
            for _ in 0..rng.gen_range(1..4) {
                let at = off + rng.gen_range(0..len);
                data[at] ^= 1 << rng.gen_range(0..8);
            }
            std::fs::write(path, &data).unwrap();
            let (log, _) = common::open(dir.path(), &common::small_config()).await;
            let k = assert_prefix(&log, &history).await;
            assert!(k <= history.len(), "round {round}");
            log.close().await.unwrap();
        }
    });
}

#[test]
fn damage_before_the_tail_is_corruption() {
    common::run(|| async {
        let mut rng = StdRng::seed_from_u64(5);
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            write_history(dir.path(), &mut rng, 150).await;
            let segs = data_segments(dir.path());
            let (path, _, batches) = segs.iter().find(|s| s.2.len() >= 4).expect("a segment with 4 batches");
            let which = rng.gen_range(0..batches.len() - 3);
            let (off, _) = batches[which];
            let mut data = std::fs::read(path).unwrap();
            // Damage the batch header's CRC so the batch certainly fails.
            data[off + 5] ^= 0xff;
            std::fs::write(path, &data).unwrap();
            match LogEngine::open(dir.path(), common::small_config(), core_shard::log::LogQueues::current()).await {
                Err(LogError::Corruption { file, offset, reason }) => {
                    assert_eq!(&file, path, "round {round}: {reason}");
                    assert_eq!(offset, off as u64, "round {round}: {reason}");
                }
                Err(other) => panic!("round {round}: expected corruption, got {other}"),
                Ok(_) => panic!("round {round}: damaged log opened"),
            }
        }
    });
}
