//! TinyKV's scripted raftstore scenarios: one partition (minority and majority), transfer
//! leader to each peer, basic membership changes (re-adding a store under a new peer id,
//! removing the leader) and one split with a stale-epoch request. The single-snapshot
//! scenario is `replication.rs`'s `follower_catches_up_through_a_snapshot_after_log_compaction`.

use std::time::Duration;

use bytes::Bytes;
use net::kv::KvClient;
use net::proto::errorpb::region_error::Kind;
use net::proto::kvrpcpb::{RawGetRequest, RawGetResponse, RawPutRequest, RawPutResponse};
use net::proto::metapb::{Peer, PeerRole, Region};
use net::proto::raft_cmdpb::ConfChangeType;
use net::Method;
use pd::PdClient;
use percore_tests::cluster::{self, ctx, leader_of, store_conn, Cluster};

#[test]
fn one_partition_minority_cannot_serve_majority_can() {
    let c = Cluster::start(5, 1, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..5).map(|i| c.store_id(i)).collect();
    let filter = c.filter.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        kv.put("k1", "v1").await.unwrap();
        let (region, leader) = leader_of(&pd, &kv, b"k1").await;
        // The old leader and one follower on one side, three stores on the other.
        let other = *ids.iter().find(|&&s| s != leader.store_id).unwrap();
        let minority = vec![leader.store_id, other];
        let majority: Vec<u64> = ids.iter().copied().filter(|s| !minority.contains(s)).collect();
        filter.partition(vec![minority.clone(), majority.clone()]);
        let old = store_conn(&pd, leader.store_id).await;
        // A write to the minority's leader is never acknowledged.
        let put =
            RawPutRequest { context: ctx(&region, Some(leader.clone())), key: "k1".into(), value: "minority".into() };
        let r: Result<RawPutResponse, _> = old.call_msg(Method::RawPut, &put, Some(Duration::from_secs(2))).await;
        let refused = match &r {
            Ok(r) => r.region_error.is_some() || !r.error.is_empty(),
            Err(_) => true, // timed out: not acknowledged
        };
        assert!(refused, "the minority acknowledged a write: {r:?}");
        // The majority elects a leader and takes writes.
        kv.put("k1", "v2").await.unwrap();
        assert_eq!(kv.get("k1").await.unwrap(), Some(Bytes::from("v2")));
        let (_, new_leader) = leader_of(&pd, &kv, b"k1").await;
        assert!(majority.contains(&new_leader.store_id), "new leader {new_leader:?} outside the majority");
        // The old leader must not serve a stale read (its lease has expired).
        let get = RawGetRequest { context: ctx(&region, Some(leader.clone())), key: "k1".into() };
        let r: Result<RawGetResponse, _> = old.call_msg(Method::RawGet, &get, Some(Duration::from_secs(2))).await;
        if let Ok(r) = &r {
            assert!(
                r.region_error.is_some() || !r.error.is_empty() || r.value.as_ref() == b"v2",
                "stale read from the partitioned old leader: {r:?}"
            );
        }
        // Healed: everyone agrees on the majority's value; the minority's write never shows.
        filter.clear();
        assert_eq!(kv.get("k1").await.unwrap(), Some(Bytes::from("v2")));
        cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(30)).await;
        assert_eq!(kv.get("k1").await.unwrap(), Some(Bytes::from("v2")));
    });
    c.shutdown();
}

#[test]
fn transfer_leader_to_each_peer() {
    let c = Cluster::start(5, 1, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..5).map(|i| c.store_id(i)).collect();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        let (region, _) = leader_of(&pd, &kv, b"").await;
        for (n, peer) in region.peers.iter().enumerate() {
            kv.transfer_leader(region.id, peer.clone()).await.unwrap();
            cluster::wait_until(Duration::from_secs(20), "the new leader", || {
                let (pd, kv) = (pd.clone(), kv.clone());
                async move { leader_of(&pd, &kv, b"").await.1.id == peer.id }
            })
            .await;
            let key = format!("after-transfer-{n}");
            kv.put(key.clone(), "v").await.unwrap();
            assert_eq!(kv.get(key).await.unwrap(), Some(Bytes::from("v")));
        }
    });
    c.shutdown();
}

/// The number of keys store `store`'s replica of `region` holds (None: no replica).
async fn keys_on(pd: &PdClient, kv: &KvClient, region: &Region, store: u64) -> Option<u64> {
    let (s, _) = pd.get_store(store).await.unwrap();
    kv.region_debug(&s.address, region.id).await.ok().filter(|r| r.region_error.is_none()).map(|r| r.key_count)
}

async fn change(kv: &KvClient, region: u64, kind: ConfChangeType, peer: Peer) -> Region {
    let mut last = String::new();
    for _ in 0..50 {
        match kv.change_peer(region, kind, peer.clone()).await {
            Ok(r) => return r,
            Err(e) => last = e.to_string(),
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    panic!("{kind:?} {peer:?}: {last}");
}

#[test]
fn basic_conf_change_readd_and_remove_leader() {
    let c = Cluster::start(3, 1, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::pause_schedulers(&pd).await;
        for i in 0..100 {
            kv.put(format!("k{i:03}"), "v").await.unwrap();
        }
        let region = pd.get_region(b"").await.unwrap().region;
        let first = region.peers[0].store_id;
        let second = *ids.iter().find(|&&s| s != first).unwrap();
        let third = *ids.iter().find(|&&s| s != first && s != second).unwrap();
        // Add store 2 (learner, then voter); it receives the data.
        let p2 = Peer { id: pd.alloc_id().await.unwrap(), store_id: second, role: PeerRole::Learner as i32 };
        change(&kv, region.id, ConfChangeType::AddLearnerNode, p2.clone()).await;
        let region = change(&kv, region.id, ConfChangeType::AddNode, p2.clone()).await;
        cluster::wait_until(Duration::from_secs(20), "the data on the second store", || {
            let (pd, kv, region) = (pd.clone(), kv.clone(), region.clone());
            async move { keys_on(&pd, &kv, &region, second).await == Some(100) }
        })
        .await;
        // Remove it: its replica goes away.
        let region = change(&kv, region.id, ConfChangeType::RemoveNode, p2.clone()).await;
        cluster::wait_until(Duration::from_secs(20), "the removed replica gone", || {
            let (pd, kv, region) = (pd.clone(), kv.clone(), region.clone());
            async move { keys_on(&pd, &kv, &region, second).await.is_none() }
        })
        .await;
        kv.put("k100", "written while the second store was out").await.unwrap();
        // Re-add the same store under a new peer id: it gets everything, including the new key.
        let p2b = Peer { id: pd.alloc_id().await.unwrap(), store_id: second, role: PeerRole::Learner as i32 };
        assert_ne!(p2b.id, p2.id);
        change(&kv, region.id, ConfChangeType::AddLearnerNode, p2b.clone()).await;
        let region = change(&kv, region.id, ConfChangeType::AddNode, p2b.clone()).await;
        let p3 = Peer { id: pd.alloc_id().await.unwrap(), store_id: third, role: PeerRole::Learner as i32 };
        change(&kv, region.id, ConfChangeType::AddLearnerNode, p3.clone()).await;
        let region = change(&kv, region.id, ConfChangeType::AddNode, p3).await;
        cluster::wait_until(Duration::from_secs(20), "the data on the re-added store", || {
            let (pd, kv, region) = (pd.clone(), kv.clone(), region.clone());
            async move { keys_on(&pd, &kv, &region, second).await == Some(101) }
        })
        .await;
        // Remove the leader itself: another peer takes over and nothing is lost.
        let (region, leader) = leader_of(&pd, &kv, b"").await;
        let region = change(&kv, region.id, ConfChangeType::RemoveNode, leader.clone()).await;
        assert!(!region.peers.iter().any(|p| p.id == leader.id));
        let (_, new_leader) = leader_of(&pd, &kv, b"").await;
        assert_ne!(new_leader.store_id, leader.store_id);
        for i in 0..100 {
            assert_eq!(kv.get(format!("k{i:03}")).await.unwrap(), Some(Bytes::from("v")));
        }
        kv.put("after", "leader removed").await.unwrap();
        cluster::wait_until(Duration::from_secs(20), "the removed leader's replica gone", || {
            let (pd, kv, region) = (pd.clone(), kv.clone(), region.clone());
            async move { keys_on(&pd, &kv, &region, leader.store_id).await.is_none() }
        })
        .await;
    });
    c.shutdown();
}

#[test]
fn one_split_and_a_stale_epoch_request() {
    let c = Cluster::start(3, 1, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        for k in ["a", "b", "c", "d"] {
            kv.put(k, k).await.unwrap();
        }
        let (before, leader) = leader_of(&pd, &kv, b"a").await;
        let (left, right) = kv.split("c").await.unwrap();
        assert_eq!(left.end_key.as_ref(), b"c");
        assert_eq!(right.start_key.as_ref(), b"c");
        // The pre-split epoch is refused on the leader's store...
        let conn = store_conn(&pd, leader.store_id).await;
        let req = RawGetRequest { context: ctx(&before, None), key: "a".into() };
        let r: RawGetResponse = conn.call_msg(Method::RawGet, &req, None).await.unwrap();
        let kind = r.region_error.and_then(|e| e.kind);
        assert!(matches!(kind, Some(Kind::EpochNotMatch(_))), "stale epoch must get EpochNotMatch, got {kind:?}");
        // ... and both halves serve their keys.
        for k in ["a", "b", "c", "d"] {
            assert_eq!(kv.get(k).await.unwrap(), Some(Bytes::from(k)));
        }
        assert_ne!(pd.get_region(b"a").await.unwrap().region.id, pd.get_region(b"d").await.unwrap().region.id);
    });
    c.shutdown();
}
