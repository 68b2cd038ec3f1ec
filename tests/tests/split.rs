//! Splits: writing 20 MB with a small split size yields ≥ 8 regions spread over both shards
//! of each store; a full scan returns every key once, in order; a request with the pre-split
//! epoch gets `EpochNotMatch` and the routing client recovers.

use std::time::Duration;

use bytes::Bytes;
use net::kv::RetryCause;
use net::proto::kvrpcpb::{Context, RawGetRequest, RawGetResponse};
use net::{Client, ConnConfig, Method};
use percore_tests::cluster::{self, Cluster};
use percore_tests::workload;

#[test]
fn twenty_megabytes_split_into_regions_spread_over_shards() {
    let c = Cluster::start(3, 2, |cfg| {
        cfg.split.region_split_size = 2 << 20;
        cfg.split.split_check_interval_ms = 100;
    });
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    let acked = workload::acked();
    let a = acked.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        // A client whose cache holds the single region from before the splits.
        let stale = cluster::kv_client(&pd_addr);
        stale.put("warm", "up").await.unwrap();
        let first = pd.get_region(b"").await.unwrap().region;
        // 20 MB: 10 clients × 2 000 keys × 1 KiB.
        let s = workload::write_keys(&kv, 10, 2000, 1024, &a, Duration::from_secs(120)).await;
        assert_eq!(s.acked, 20_000);
        cluster::wait_until(Duration::from_secs(60), "at least 8 regions", || {
            let pd = pd.clone();
            async move { pd.scan_regions(b"", b"", 0).await.map(|r| r.len()).unwrap_or(0) >= 8 }
        })
        .await;
        // Regions of every store spread over both shards.
        cluster::wait_until(Duration::from_secs(60), "regions on both shards of every store", || {
            let pd = pd.clone();
            async move {
                let stores = pd.get_all_stores().await.unwrap();
                stores
                    .iter()
                    .all(|(_, st)| st.shard_region_counts.len() == 2 && st.shard_region_counts.iter().all(|&n| n >= 2))
            }
        })
        .await;
        for (s, st) in pd.get_all_stores().await.unwrap() {
            eprintln!(
                "store {}: regions per shard {:?}, leaders per shard {:?}",
                s.id, st.shard_region_counts, st.shard_leader_counts
            );
        }
        // A full scan returns every key once, in order.
        let all = kv.scan(Bytes::new(), Bytes::new(), 0, false, false).await.unwrap();
        let keys: Vec<&Bytes> = all.iter().map(|(k, _)| k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "scan out of order or with duplicates");
        let expected = a.lock().unwrap().clone();
        assert_eq!(all.len(), expected.len() + 1, "every written key once (plus 'warm')");
        for (k, v) in &all {
            if k.as_ref() != b"warm" {
                assert_eq!(expected.get(k), Some(v), "key {k:?}");
            }
        }
        // The reverse scan is the same, backwards.
        let rev = kv.scan(Bytes::new(), Bytes::new(), 0, true, true).await.unwrap();
        assert_eq!(rev.len(), all.len());
        assert!(rev.iter().rev().map(|(k, _)| k).eq(keys.iter().copied()));
        // A raw request with the pre-split epoch gets EpochNotMatch.
        let leader_store = pd.get_region(b"").await.unwrap().leader.unwrap().store_id;
        let (store, _) = pd.get_store(leader_store).await.unwrap();
        let conn = Client::connect(&store.address, ConnConfig::default()).await.unwrap();
        let req = RawGetRequest {
            context: Some(Context { region_id: first.id, region_epoch: first.region_epoch.clone(), peer: None }),
            key: workload::key(0, 0),
        };
        let r: RawGetResponse = conn.call_msg(Method::RawGet, &req, None).await.unwrap();
        let kind = r.region_error.and_then(|e| e.kind);
        assert!(
            matches!(kind, Some(net::proto::errorpb::region_error::Kind::EpochNotMatch(_))),
            "stale epoch must get EpochNotMatch, got {kind:?}"
        );
        // The routing client with the stale cache recovers.
        let last = workload::key(9, 1999);
        assert_eq!(stale.get(last.clone()).await.unwrap(), Some(workload::value(9, 1999, 1024)));
        let st = stale.stats();
        assert!(
            st.retries(RetryCause::EpochNotMatch) + st.retries(RetryCause::KeyNotInRegion) > 0,
            "the stale client must have been corrected by the store"
        );
        workload::verify(&kv, &a).await;
    });
    c.shutdown();
}

/// Transactional data counts toward the split size too: 2 MB written only through
/// transactions (long values in the default family, versions in the write family) splits a
/// region whose split size is 256 KiB, and a snapshot scan still sees every key once.
#[test]
fn transactional_data_splits_regions_too() {
    let c = Cluster::start(1, 1, |cfg| {
        cfg.split.region_split_size = 256 << 10;
        cfg.split.split_check_interval_ms = 100;
    });
    let pd_addr = c.pd_addr();
    cluster::run(move || async move {
        let pd = std::rc::Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = net::kv::TxnClient::new(kv, pd.clone(), net::kv::TxnConfig::default());
        let value = Bytes::from(vec![b'v'; 1024]);
        for batch in 0..200 {
            let mut t = txn.begin().await.unwrap();
            for i in 0..10 {
                t.put(format!("t-{:05}", batch * 10 + i), value.clone());
            }
            t.commit().await.unwrap();
        }
        cluster::wait_until(Duration::from_secs(60), "at least 4 regions", || {
            let pd = pd.clone();
            async move { pd.scan_regions(b"", b"", 0).await.map(|r| r.len()).unwrap_or(0) >= 4 }
        })
        .await;
        let ts = txn.timestamp().await.unwrap();
        let all = txn.snapshot(ts).scan("t-", "t.", 0).await.unwrap();
        assert_eq!(all.len(), 2000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "scan out of order or with duplicates");
    });
    c.shutdown();
}
