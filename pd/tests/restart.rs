//! PD keeps its state across an in-process restart and across `kill -9` of the process:
//! cluster id, stores, regions, ID and TSO high-water marks; stale heartbeats are refused.

mod common;

use net::proto::pdpb::{ErrorType, RegionHeartbeatRequest};
use pd::PdError;

/// Bootstraps and fills a PD; returns (cluster id, ids handed out, largest timestamp).
async fn populate(addr: &str) -> (u64, Vec<u64>, u64) {
    let c = common::client(addr);
    assert!(!c.is_bootstrapped().await.unwrap());
    c.bootstrap(common::store(1), common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
    assert!(c.is_bootstrapped().await.unwrap());
    match c.bootstrap(common::store(1), common::region(2, b"", b"", 1, 1, &[1])).await {
        Err(PdError::Server { kind: ErrorType::AlreadyBootstrapped, .. }) => {}
        other => panic!("second bootstrap: {other:?}"),
    }
    c.put_store(common::store(3)).await.unwrap();
    // Region 2 split into 2 ["", "m") and 4 ["m", "").
    let (new_id, peer_ids) = c.ask_split(common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
    assert_eq!(peer_ids.len(), 1);
    c.report_split(common::region(2, b"", b"m", 1, 2, &[1]), common::region(new_id, b"m", b"", 1, 2, &[1]))
        .await
        .unwrap();
    let mut ids = vec![new_id, peer_ids[0]];
    for _ in 0..1500 {
        ids.push(c.alloc_id().await.unwrap());
    }
    let mut ts = 0;
    for _ in 0..100 {
        let t = c.get_ts().await.unwrap();
        assert!(t > ts);
        ts = t;
    }
    (c.cluster_id(), ids, ts)
}

async fn verify(addr: &str, cluster_id: u64, ids: &[u64], last_ts: u64) {
    let c = common::client(addr);
    let info = c.cluster_info().await.unwrap();
    assert_eq!(c.cluster_id(), cluster_id, "cluster id changed");
    assert!(info.bootstrapped);
    let stores: Vec<u64> = c.get_all_stores().await.unwrap().iter().map(|(s, _)| s.id).collect();
    assert_eq!(stores, vec![1, 3]);
    let regions = c.scan_regions(b"", b"", 0).await.unwrap();
    let got: Vec<(u64, Vec<u8>, u64)> = regions
        .iter()
        .map(|r| (r.region.id, r.region.end_key.to_vec(), r.region.region_epoch.clone().unwrap().version))
        .collect();
    assert_eq!(got, vec![(2, b"m".to_vec(), 2), (ids[0], vec![], 2)]);
    assert_eq!(c.get_region(b"zebra").await.unwrap().region.id, ids[0]);
    let max_id = *ids.iter().max().unwrap();
    for _ in 0..10 {
        let id = c.alloc_id().await.unwrap();
        assert!(id > max_id, "id {id} handed out again (max before restart {max_id})");
    }
    let t = c.get_ts().await.unwrap();
    assert!(t > last_ts, "timestamp went back: {t} <= {last_ts}");
    assert!(info.id_high_water > max_id);
}

#[test]
fn in_process_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    let (cluster_id, ids, ts) = common::run(move || async move { populate(&addr).await });
    pd.stop();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    let ids2 = ids.clone();
    common::run(move || async move { verify(&addr, cluster_id, &ids2, ts).await });
    pd.stop();
}

#[test]
fn kill_9_keeps_everything_and_tso_stays_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::PdProcess::start(dir.path());
    let addr = pd.addr.clone();
    let (cluster_id, ids, history) = common::run(move || async move {
        let (cluster_id, ids, _) = populate(&addr).await;
        let history = common::concurrent_tso(&addr, 10, 1000).await;
        common::assert_tso_linearizable(&history);
        (cluster_id, ids, history)
    });
    pd.kill9();
    let last = history.iter().map(|h| h.2).max().unwrap();
    let pd = common::PdProcess::start(dir.path());
    let addr = pd.addr.clone();
    let info = common::ctl_json(&pd.addr, &["cluster"]);
    assert_eq!(info["cluster_id"], cluster_id);
    assert_eq!(info["stores"], 2);
    let regions = common::ctl_json(&pd.addr, &["regions"]);
    assert_eq!(regions.as_array().unwrap().len(), 2);
    assert_eq!(common::ctl_json(&pd.addr, &["region", "zebra"])["id"], ids[0]);
    assert_eq!(common::ctl_json(&pd.addr, &["region", "--id", "2"])["end_key"], "m");
    common::run(move || async move {
        verify(&addr, cluster_id, &ids, last).await;
        let after = common::concurrent_tso(&addr, 10, 100).await;
        common::assert_tso_linearizable(&after);
        assert!(after.iter().all(|h| h.2 > last));
    });
    pd.kill9();
}

#[test]
fn a_stale_region_heartbeat_does_not_overwrite_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        c.bootstrap(common::store(1), common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
        let hb = |r| RegionHeartbeatRequest { region: Some(r), leader: None, ..Default::default() };
        c.region_heartbeat(hb(common::region(2, b"", b"", 3, 4, &[1]))).await.unwrap();
        for stale in [common::region(2, b"", b"", 2, 4, &[1]), common::region(2, b"", b"", 3, 3, &[1])] {
            match c.region_heartbeat(hb(stale)).await {
                Err(PdError::Server { kind: ErrorType::StaleRegion, .. }) => {}
                other => panic!("stale heartbeat accepted: {other:?}"),
            }
        }
        let now = c.get_region_by_id(2).await.unwrap().region.region_epoch.unwrap();
        assert_eq!((now.conf_ver, now.version), (3, 4));
    });
    pd.stop();
}

#[test]
fn the_client_reconnects_with_backoff_across_a_pd_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = common::free_addr();
    let pd = common::InProcessPd::start_on(dir.path(), &addr);
    let (ready_tx, ready_rx) = flume::bounded::<()>(1);
    let (stopped_tx, stopped_rx) = flume::bounded::<()>(1);
    let (restart_tx, restart_rx) = flume::bounded::<()>(1);
    let a = addr.clone();
    let client_thread = std::thread::spawn(move || {
        common::run(move || async move {
            let c = common::client(&a);
            let before = c.get_ts().await.unwrap();
            ready_tx.send_async(()).await.unwrap();
            stopped_rx.recv_async().await.unwrap();
            // PD is down now; it comes back a little later on the same address.
            restart_tx.send_async(()).await.unwrap();
            let after = c.get_ts().await.expect("the call must survive the restart");
            assert!(after > before);
            assert!(c.stats().reconnects > 0);
        })
    });
    ready_rx.recv().unwrap();
    pd.stop();
    stopped_tx.send(()).unwrap();
    restart_rx.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pd = common::InProcessPd::start_on(dir.path(), &addr);
    client_thread.join().unwrap();
    pd.stop();
}

#[test]
fn scheduler_control_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        let cfg = c.schedule_config(vec![("max-store-down-time-ms".into(), "4242".into())]).await.unwrap();
        assert_eq!(cfg["max-store-down-time-ms"], "4242");
        assert!(c.schedule_config(vec![("max-replicas".into(), "zero".into())]).await.is_err());
        c.pause_scheduler("balance-region", true).await.unwrap();
        assert!(c.pause_scheduler("no-such", true).await.is_err());
    });
    pd.stop();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        let cfg = c.schedule_config(vec![]).await.unwrap();
        assert_eq!(cfg["max-store-down-time-ms"], "4242");
        let s = c.schedulers().await.unwrap();
        assert!(s.iter().any(|s| s.name == "balance-region" && s.paused));
        assert!(s.iter().any(|s| s.name == "balance-leader" && !s.paused));
    });
    pd.stop();
}
