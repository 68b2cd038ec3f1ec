//! Purge deletes a segment only when no region needs it (entries or latest hard state),
//! and reports the regions that pin the oldest segment.

mod common;

use core_shard::log::{Entry, HardState};

fn segment_files(dir: &std::path::Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(|n| n.strip_suffix(".rlog")?.parse().ok()))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn purge_deletes_only_unneeded_segments() {
    common::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = common::small_config();
        let (log, _) = common::open(dir.path(), &config).await;
        // Region 3 writes one hard state first: it lives in the oldest segment.
        log.append(3, vec![], Some(HardState { term: 1, vote: 3, commit: 0 })).unwrap().await.unwrap();
        let mut last = None;
        for i in 1..=300u64 {
            for region in [1u64, 2] {
                let e = Entry { index: i, term: 1, data: common::payload(region, i, 0, 1000) };
                last = Some(log.append(region, vec![e], None).unwrap());
            }
            if i % 10 == 0 {
                last.take().unwrap().await.unwrap();
            }
        }
        if let Some(d) = last {
            d.await.unwrap();
        }
        let before = segment_files(dir.path());
        assert!(before.len() >= 8, "600 KB must span many 64 KiB segments: {before:?}");
        let oldest = before[0];

        // Everyone still needs the oldest segment.
        let r = log.purge().await.unwrap();
        assert!(r.purged.is_empty());
        assert_eq!(r.pinned, vec![(1, oldest), (2, oldest), (3, oldest)]);

        // Region 1 compacts everything, region 2 up to 200: region 3's hard state still pins.
        log.compact(1, 301).unwrap().await.unwrap();
        log.compact(2, 200).unwrap().await.unwrap();
        let r = log.purge().await.unwrap();
        assert!(r.purged.is_empty(), "{r:?}");
        assert_eq!(r.pinned, vec![(3, oldest)]);

        // Re-logging the hard state moves it to the active segment: now segments go.
        log.append(3, vec![], Some(HardState { term: 1, vote: 3, commit: 0 })).unwrap().await.unwrap();
        let r = log.purge().await.unwrap();
        assert!(!r.purged.is_empty(), "{r:?}");
        assert_eq!(r.pinned.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2], "{r:?}");
        let after = segment_files(dir.path());
        for seq in &r.purged {
            assert!(!after.contains(seq), "segment {seq} still on disk");
        }
        // Everything region 2 still has is readable, now and after a restart.
        let check = |log: core_shard::log::LogEngine| async move {
            let got = log.entries(2, 200, 301, None).await.unwrap();
            assert_eq!(got.len(), 101);
            for e in &got {
                assert_eq!(e.data, common::payload(2, e.index, 0, 1000));
            }
            assert_eq!(log.hard_state(3), Some(HardState { term: 1, vote: 3, commit: 0 }));
            log
        };
        let log = check(log).await;
        log.close().await.unwrap();
        let (log, report) = common::open(dir.path(), &config).await;
        assert!(report.removed.is_empty(), "{report:?}");
        let log = check(log).await;
        // The segment holding entry 200 of region 2 was not purged.
        assert!(log.purge().await.unwrap().pinned.iter().all(|p| p.0 == 2));
        log.close().await.unwrap();
    });
}
