//! Model test of the raft log engine: random appends (including overwrites of a suffix, as
//! raft does after a leader change), hard states, compactions, removals, purges and
//! restarts, checked against an in-memory model after every restart and along the way.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use core_shard::log::{Entry, HardState, LogEngine, LogError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Default, Debug)]
struct ModelRegion {
    first: u64,
    entries: Vec<(u64, Bytes)>,
    hs: Option<HardState>,
}

impl ModelRegion {
    fn last(&self) -> u64 {
        (self.first + self.entries.len() as u64).saturating_sub(1)
    }
}

#[derive(Default)]
struct Model {
    regions: BTreeMap<u64, ModelRegion>,
}

impl Model {
    fn append(&mut self, region: u64, entries: &[Entry], hs: Option<HardState>) {
        let r = self.regions.entry(region).or_default();
        if let Some(e0) = entries.first() {
            if r.entries.is_empty() {
                r.first = e0.index;
            } else {
                r.entries.truncate((e0.index - r.first) as usize);
            }
            r.entries.extend(entries.iter().map(|e| (e.term, e.data.clone())));
        }
        if hs.is_some() {
            r.hs = hs;
        }
    }

    fn compact(&mut self, region: u64, upto: u64) {
        let r = self.regions.entry(region).or_default();
        if upto <= r.first {
            return;
        }
        let n = ((upto - r.first) as usize).min(r.entries.len());
        r.entries.drain(..n);
        r.first = upto;
    }
}

async fn check(log: &LogEngine, model: &Model, when: &str) {
    for (&region, r) in &model.regions {
        assert_eq!(log.hard_state(region), r.hs, "{when}: hard state of region {region}");
        if r.entries.is_empty() {
            assert_eq!(log.entry_count(region), 0, "{when}: region {region} should have no entries");
            continue;
        }
        assert_eq!(log.first_index(region), Some(r.first), "{when}: first index of region {region}");
        assert_eq!(log.last_index(region), Some(r.last()), "{when}: last index of region {region}");
        let got = log.entries(region, r.first, r.last() + 1, None).await.expect("read entries");
        assert_eq!(got.len(), r.entries.len(), "{when}: region {region}");
        for (i, (e, (term, data))) in got.iter().zip(&r.entries).enumerate() {
            assert_eq!(e.index, r.first + i as u64);
            assert_eq!((e.term, &e.data), (*term, data), "{when}: region {region} entry {}", e.index);
        }
        assert_eq!(log.term(region, r.last()).unwrap(), r.entries.last().unwrap().0);
        assert!(matches!(
            log.term(region, r.first - 1),
            Err(LogError::Compacted { .. }) | Err(LogError::Unavailable { .. })
        ));
    }
    // Regions the model dropped must be gone or empty.
    for region in log.regions() {
        if !model.regions.contains_key(&region) {
            assert!(log.hard_state(region).is_none(), "{when}: region {region} should be gone");
            assert_eq!(log.entry_count(region), 0, "{when}: region {region} should be gone");
        }
    }
}

fn random_entries(rng: &mut StdRng, region: u64, from: u64, term: u64, version: u64) -> Vec<Entry> {
    let n = rng.gen_range(1..6);
    (0..n)
        .map(|i| {
            let len = if rng.gen_bool(0.05) { rng.gen_range(2000..9000) } else { rng.gen_range(0..300) };
            Entry { index: from + i, term, data: common::payload(region, from + i, version, len) }
        })
        .collect()
}

async fn run_model(seed: u64, ops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::small_config();
    let (mut log, _) = common::open(dir.path(), &config).await;
    let mut model = Model::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut term = 1u64;
    let mut pending = Vec::new();
    let mut restarts = 0;
    for op in 0..ops {
        let region = rng.gen_range(1..=8u64);
        match rng.gen_range(0..100) {
            0..=69 => {
                let r = model.regions.get(&region);
                let from = match r {
                    Some(r) if !r.entries.is_empty() => {
                        // Mostly append at the end; sometimes overwrite a suffix.
                        if rng.gen_bool(0.8) {
                            r.last() + 1
                        } else {
                            rng.gen_range(r.first..=r.last())
                        }
                    }
                    Some(r) if r.first > 0 => r.first,
                    _ => rng.gen_range(1..10),
                };
                if rng.gen_bool(0.1) {
                    term += 1;
                }
                let entries = random_entries(&mut rng, region, from, term, op as u64);
                let hs = rng.gen_bool(0.5).then(|| HardState { term, vote: rng.gen_range(0..4), commit: from });
                model.append(region, &entries, hs);
                pending.push(log.append(region, entries, hs).expect("append"));
            }
            70..=74 => {
                // Hard state only.
                let hs = HardState { term, vote: 1, commit: op as u64 };
                model.append(region, &[], Some(hs));
                pending.push(log.append(region, vec![], Some(hs)).expect("append hs"));
            }
            75..=84 => {
                if let Some(r) = model.regions.get(&region) {
                    let upto = rng.gen_range(r.first..=r.last() + 2);
                    model.compact(region, upto);
                    pending.push(log.compact(region, upto).expect("compact"));
                }
            }
            85..=86 => {
                model.regions.remove(&region);
                pending.push(log.remove(region).expect("remove"));
            }
            87..=89 => {
                // Invalid: a gap after the end must be refused and change nothing.
                if let Some(r) = model.regions.get(&region).filter(|r| !r.entries.is_empty()) {
                    let bad = vec![Entry { index: r.last() + 2, term, data: Bytes::new() }];
                    assert!(matches!(log.append(region, bad, None), Err(LogError::BadAppend { .. })));
                }
            }
            90..=94 => {
                for d in pending.drain(..) {
                    d.await.expect("durable");
                }
                let report = log.purge().await.expect("purge");
                assert!(report.segments >= 1);
            }
            _ => {
                for d in pending.drain(..) {
                    d.await.expect("durable");
                }
                check(&log, &model, &format!("seed {seed} op {op} before restart")).await;
                log.close().await.expect("close");
                let (l, report) = common::open(dir.path(), &config).await;
                assert!(report.truncated.is_none(), "clean shutdown must not truncate: {report:?}");
                log = l;
                restarts += 1;
                check(&log, &model, &format!("seed {seed} op {op} after restart {restarts}")).await;
            }
        }
    }
    for d in pending.drain(..) {
        d.await.expect("durable");
    }
    log.close().await.unwrap();
    let (log, _) = common::open(dir.path(), &config).await;
    check(&log, &model, &format!("seed {seed} final")).await;
    let stats = log.stats();
    log.close().await.unwrap();
    assert!(restarts > 0);
    let _ = stats;
}

#[test]
fn log_matches_model_across_restarts() {
    for seed in [1u64, 2, 3, 4] {
        common::run(move || run_model(seed, 3000));
    }
}

#[test]
fn reads_come_from_disk_when_not_cached() {
    common::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = common::small_config();
        let (log, _) = common::open(dir.path(), &config).await;
        let mut last = None;
        for i in 1..=400u64 {
            last = Some(
                log.append(3, vec![Entry { index: i, term: 1, data: common::payload(3, i, 0, 200) }], None).unwrap(),
            );
        }
        last.unwrap().await.unwrap();
        let got = log.entries(3, 1, 401, None).await.unwrap();
        assert_eq!(got.len(), 400);
        for e in &got {
            assert_eq!(e.data, common::payload(3, e.index, 0, 200));
        }
        assert!(log.stats().disk_reads > 0, "a 16 KiB cache cannot hold 80 KB of entries");
        log.close().await.unwrap();
        // After a reopen nothing is cached: the blocking path reads the same bytes.
        let (log, _) = common::open(dir.path(), &config).await;
        let got = log.entries_blocking(3, 1, 401, None).unwrap();
        assert_eq!(got.len(), 400);
        for e in &got {
            assert_eq!(e.data, common::payload(3, e.index, 0, 200));
        }
        // max_bytes limits the result but always returns one entry.
        assert_eq!(log.entries(3, 1, 401, Some(1)).await.unwrap().len(), 1);
        assert!(log.entries(3, 1, 401, Some(2000)).await.unwrap().len() < 20);
        log.close().await.unwrap();
    });
}
