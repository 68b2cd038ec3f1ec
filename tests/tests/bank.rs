//! The bank test: 20 accounts over several regions of a 5-store cluster, concurrent
//! transfer transactions and read-only transactions that read every balance at one
//! snapshot (the [`percore_tests::bank`] workload). Every snapshot sums to the initial
//! total, every committed transfer is reflected exactly once, and the history of reads and
//! writes passes the snapshot-isolation checker. `PERCORE_BANK_SECS` sets the run time
//! (default 10 s); `percore-chaos --workload bank` runs it under process faults.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use net::kv::{TxnClient, TxnConfig};
use percore_tests::bank::{self, BankConfig};
use percore_tests::cluster::{self, Cluster};

#[test]
fn every_snapshot_balances_and_every_committed_transfer_counts_once() {
    let c = Cluster::start(5, 1, |_| {});
    let pd_addr = c.pd_addr();
    let run_for =
        Duration::from_secs(std::env::var("PERCORE_BANK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10));
    let (report, regions) = cluster::run(move || async move {
        let pd = Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = TxnClient::new(kv.clone(), pd.clone(), TxnConfig::default());
        // Three replicas of every region (PD's replica checker), then several regions.
        cluster::wait_until(Duration::from_secs(60), "3 replicas of the first region", || {
            let pd = pd.clone();
            async move { pd.get_region(b"").await.is_ok_and(|r| r.region.peers.len() >= 3) }
        })
        .await;
        let cfg = BankConfig::default();
        bank::setup(&kv, &txn, &cfg).await.expect("bank set-up");
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(run_for).await;
            s2.store(true, Ordering::SeqCst);
        })
        .detach();
        let log = bank::run(&txn, &cfg, &stop).await;
        let report = bank::verify(&txn, &cfg, log, Duration::from_secs(30)).await.expect("final read");
        let regions = pd.scan_regions(b"", b"", 0).await.unwrap().len();
        (report, regions)
    });
    println!("{report}; {regions} regions");
    assert!(report.ok(), "{report}");
    assert!(report.committed > 20, "too few transfers committed to mean anything: {report}");
    assert!(report.snapshots > 10, "too few snapshots read: {report}");
    assert_eq!(report.unknown + report.failed as usize, 0, "no faults, so no unknown outcomes: {report}");
    assert!(regions >= 4, "the accounts should span several regions");
    c.shutdown();
}
