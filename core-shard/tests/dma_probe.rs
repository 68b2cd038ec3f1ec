//! glommio 0.9 probes io_uring poll support with the first O_DIRECT file a process opens on a
//! device; an empty first file makes the probe wrongly succeed and every later read fail
//! with EOPNOTSUPP. This test is its own process (its own test binary) so that the log
//! engine's identity file really is the first DMA file opened: reads from disk must work.

mod common;

use core_shard::log::Entry;

#[test]
fn first_dma_file_is_not_empty_and_disk_reads_work() {
    common::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = common::small_config();
        let (log, _) = common::open(dir.path(), &config).await;
        let ident = std::fs::metadata(dir.path().join("IDENT")).unwrap();
        assert!(ident.len() >= 4096, "the identity file must be padded (not empty)");
        log.append(1, vec![Entry { index: 1, term: 1, data: "x".repeat(100).into() }], None).unwrap().await.unwrap();
        log.close().await.unwrap();
        // After a reopen nothing is cached: this read goes through the ring to the disk.
        let (log, _) = common::open(dir.path(), &config).await;
        let got = log.entries(1, 1, 2, None).await.expect("disk read must not fail with EOPNOTSUPP");
        assert_eq!(got[0].data, "x".repeat(100));
        assert_eq!(log.stats().disk_reads, 1);
        log.close().await.unwrap();
    });
}
