//! Membership changes under load: a region's replica moves from store 1 to store 4 (add as
//! learner, promote, remove), leadership moves to each peer in turn, and no acknowledged
//! write is lost. Plus bad input: stale epochs, keys outside the region, unknown regions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use net::proto::errorpb::region_error::Kind;
use net::proto::kvrpcpb::{Context, RawGetRequest, RawGetResponse, RawPutRequest, RawPutResponse};
use net::proto::metapb::{Peer, PeerRole, RegionEpoch};
use net::proto::raft_cmdpb::ConfChangeType;
use net::{Client, ConnConfig, Method};
use percore_tests::cluster::{self, Cluster};
use percore_tests::workload;

/// Writers that run until `stop`, recording acknowledged writes.
fn spawn_writers(
    kv: &net::kv::KvClient,
    clients: usize,
    acked: &workload::Acked,
    stop: &Arc<AtomicBool>,
) -> Vec<glommio::Task<usize>> {
    (0..clients)
        .map(|c| {
            let (kv, acked, stop) = (kv.clone(), acked.clone(), stop.clone());
            glommio::spawn_local(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match kv.put(workload::key(c, i), workload::value(c, i, 100)).await {
                        Ok(()) => {
                            acked.lock().unwrap().insert(workload::key(c, i), workload::value(c, i, 100));
                        }
                        Err(e) => eprintln!("write failed: {e}"),
                    }
                    i += 1;
                }
                i
            })
        })
        .collect()
}

#[test]
fn replica_moves_and_leadership_rotates_under_load() {
    let c = Cluster::start(4, 2, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..4).map(|i| c.store_id(i)).collect();
    let acked = workload::acked();
    let a = acked.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids[..3]).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers = spawn_writers(&kv, 4, &a, &stop);
        glommio::timer::sleep(Duration::from_millis(300)).await;
        let region = pd.get_region(b"").await.unwrap().region;
        let rid = region.id;
        let (s1, s4) = (ids[0], ids[3]);
        // Move the replica on store 1 to store 4: learner, promote, then remove.
        let id = pd.alloc_id().await.unwrap();
        let learner = Peer { id, store_id: ids[3], role: PeerRole::Learner as i32 };
        kv.change_peer(rid, ConfChangeType::AddLearnerNode, learner.clone()).await.unwrap();
        cluster::wait_until(Duration::from_secs(20), "learner on store 4 catches up", || {
            let (pd, kv) = (pd.clone(), kv.clone());
            async move {
                let r = pd.get_region_by_id(rid).await.unwrap().region;
                cluster::replica_views(&pd, &kv, &r)
                    .await
                    .iter()
                    .any(|(s, v)| *s == s4 && v.as_ref().is_some_and(|v| v.applied_index > 10))
            }
        })
        .await;
        kv.change_peer(rid, ConfChangeType::AddNode, learner.clone()).await.unwrap();
        let old = region.peers.iter().find(|p| p.store_id == ids[0]).cloned().unwrap();
        // Removing the leader's own peer works too, but move leadership away first.
        let target = kv.change_peer(rid, ConfChangeType::RemoveNode, old.clone()).await;
        if target.is_err() {
            let other = region.peers.iter().find(|p| p.store_id != ids[0]).cloned().unwrap();
            kv.transfer_leader(rid, other).await.unwrap();
            glommio::timer::sleep(Duration::from_millis(500)).await;
            kv.change_peer(rid, ConfChangeType::RemoveNode, old.clone()).await.unwrap();
        }
        cluster::wait_until(Duration::from_secs(20), "region without store 1", || {
            let pd = pd.clone();
            async move {
                let r = pd.get_region_by_id(rid).await.unwrap().region;
                !r.peers.iter().any(|p| p.store_id == s1) && r.peers.iter().any(|p| p.store_id == s4)
            }
        })
        .await;
        // Leadership to each peer in turn.
        let peers = pd.get_region_by_id(rid).await.unwrap().region.peers;
        assert_eq!(peers.len(), 3);
        for p in &peers {
            let mut moved = false;
            for _ in 0..20 {
                let _ = kv.transfer_leader(rid, p.clone()).await;
                let r = pd.get_region_by_id(rid).await.unwrap().region;
                let views = cluster::replica_views(&pd, &kv, &r).await;
                if views.iter().any(|(s, v)| *s == p.store_id && v.as_ref().is_some_and(|v| v.is_leader)) {
                    moved = true;
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
            assert!(moved, "leadership did not move to peer {} on store {}", p.id, p.store_id);
        }
        stop.store(true, Ordering::Relaxed);
        let mut attempts = 0;
        for w in writers {
            attempts += w.await;
        }
        let n = a.lock().unwrap().len();
        eprintln!("{n} of {attempts} writes acknowledged during the moves");
        assert!(n > 100, "the workload must have made progress");
        assert_eq!(n, attempts, "with retries, every write must succeed during the moves");
        workload::verify(&kv, &a).await;
        cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(30)).await;
    });
    c.shutdown();
}

#[test]
fn bad_input_gets_typed_region_errors() {
    let c = Cluster::start(1, 2, |_| {});
    let pd_addr = c.pd_addr();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        kv.put("m", "1").await.unwrap();
        let (left, right) = kv.split("m").await.unwrap();
        // PD learns the left region's leader from its next heartbeat after the split.
        let mut leader = None;
        for _ in 0..500 {
            leader = pd.get_region(b"a").await.unwrap().leader;
            if leader.is_some() {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let leader = leader.expect("PD knows the left region's leader within 10 s");
        let (store, _) = pd.get_store(leader.store_id).await.unwrap();
        let conn = Client::connect(&store.address, ConnConfig::default()).await.unwrap();
        let ctx = |id, epoch: Option<RegionEpoch>| Some(Context { region_id: id, region_epoch: epoch, peer: None });
        let kind_of = |e: Option<net::proto::errorpb::RegionError>| e.and_then(|e| e.kind);
        // Stale epoch.
        let stale = RegionEpoch { conf_ver: 1, version: 1 };
        let r: RawPutResponse = conn
            .call_msg(
                Method::RawPut,
                &RawPutRequest { context: ctx(left.id, Some(stale)), key: "a".into(), value: "x".into() },
                None,
            )
            .await
            .unwrap();
        assert!(matches!(kind_of(r.region_error), Some(Kind::EpochNotMatch(_))));
        // A key outside the region.
        let r: RawGetResponse = conn
            .call_msg(
                Method::RawGet,
                &RawGetRequest { context: ctx(left.id, left.region_epoch.clone()), key: "z".into() },
                None,
            )
            .await
            .unwrap();
        assert!(matches!(kind_of(r.region_error.clone()), Some(Kind::KeyNotInRegion(_))), "{r:?}");
        let r: RawPutResponse = conn
            .call_msg(
                Method::RawPut,
                &RawPutRequest {
                    context: ctx(left.id, left.region_epoch.clone()),
                    key: "zz".into(),
                    value: "x".into(),
                },
                None,
            )
            .await
            .unwrap();
        assert!(matches!(kind_of(r.region_error.clone()), Some(Kind::KeyNotInRegion(_))), "{r:?}");
        // An unknown region.
        let r: RawGetResponse = conn
            .call_msg(Method::RawGet, &RawGetRequest { context: ctx(987_654, None), key: "a".into() }, None)
            .await
            .unwrap();
        assert!(matches!(kind_of(r.region_error.clone()), Some(Kind::RegionNotFound(_))), "{r:?}");
        // No context at all, garbage payloads: errors, not panics; the store keeps serving.
        let r: RawGetResponse = conn.call_msg(Method::RawGet, &RawGetRequest::default(), None).await.unwrap();
        assert!(r.region_error.is_some());
        let garbage = conn.call(Method::RawPut, Bytes::from_static(&[0xff, 0xff, 0xff]), None).await;
        assert!(garbage.is_err());
        assert_eq!(kv.get("m").await.unwrap(), Some(Bytes::from_static(b"1")));
        assert!(right.start_key == Bytes::from_static(b"m"));
    });
    c.shutdown();
}
