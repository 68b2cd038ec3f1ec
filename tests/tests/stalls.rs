//! No request waits for the client's timeout (issue 12).
//!
//! Each test makes a new leader that cannot commit the first entry of its term: the region's
//! leadership is moved to a store whose append responses are dropped by the transport filter.
//! That is the window every new leader goes through (after an election, a transfer, or a
//! split, whose new region elects itself at once), held open deterministically.
//!
//! * raft-rs drops a read index request in that window without a word. The store used to hand
//!   it over anyway, and the read was never answered: `make run` showed a READ of 10.05 s (the
//!   client's call timeout) right after its region split. Such a read now waits in the store
//!   and is served once the leader commits.
//! * Whatever a request waits for, the store answers it within `request.timeout-ms`: a read
//!   or unproposed write with `RequestTimeout`, a proposed write with `UndeterminedResult`;
//!   and one pending past `request.slow-ms` is logged ("slow request", with its stage) and
//!   counted.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::proto::errorpb::region_error::Kind;
use net::proto::kvrpcpb::{RawGetRequest, RawGetResponse, RawPutRequest, RawPutResponse};
use net::proto::metapb::{Peer, Region};
use net::Method;
use percore_tests::cluster::{self, ctx, leader_of, store_conn, Cluster};
use percore_tests::filter::ClusterFilter;
use raft::eraftpb::MessageType;

/// Moves the leadership of the region holding `key` to a peer on another store than its
/// leader's, after telling the filter to drop that store's append responses for the region:
/// the new leader is elected but cannot commit. Returns the region and the new leader.
async fn leader_that_cannot_commit(
    pd: &pd::PdClient,
    kv: &net::kv::KvClient,
    filter: &ClusterFilter,
    key: &[u8],
) -> (Region, Peer) {
    let (region, old) = leader_of(pd, kv, key).await;
    let target = region.peers.iter().find(|p| p.store_id != old.store_id).cloned().expect("a follower");
    filter.drop_kind(region.id, target.store_id, MessageType::MsgAppendResponse);
    kv.transfer_leader(region.id, target.clone()).await.expect("transfer accepted");
    cluster::wait_until(Duration::from_secs(20), "the transfer's target to lead", || {
        let (pd, kv, id) = (pd.clone(), kv.clone(), target.id);
        async move { leader_of(&pd, &kv, key).await.1.id == id }
    })
    .await;
    let (region, leader) = leader_of(pd, kv, key).await;
    assert_eq!(leader.id, target.id);
    (region, leader)
}

#[test]
fn a_read_at_a_leader_that_has_not_committed_yet_is_answered_once_it_commits() {
    let c = Cluster::start(3, 1, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    let filter = c.filter.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        kv.put("k", "v1").await.unwrap();
        let (region, leader) = leader_that_cannot_commit(&pd, &kv, &filter, b"k").await;
        let conn = store_conn(&pd, leader.store_id).await;
        // The read reaches the new leader before it commits; the commit comes 500 ms later.
        let heal = {
            let filter = filter.clone();
            glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_millis(500)).await;
                filter.clear();
            })
        };
        let t0 = Instant::now();
        let get = RawGetRequest { context: ctx(&region, Some(leader.clone())), key: "k".into() };
        let r: RawGetResponse = conn
            .call_msg(Method::RawGet, &get, Some(Duration::from_secs(3)))
            .await
            .expect("the read is answered, not left to the call timeout");
        heal.await;
        assert!(r.region_error.is_none() && r.error.is_empty(), "{r:?}");
        assert_eq!(r.value, Bytes::from("v1"));
        tracing::info!("read answered after {:?}", t0.elapsed());
    });
    c.shutdown();
}

#[test]
fn requests_the_store_cannot_finish_get_an_explicit_answer_within_the_bound() {
    let bound = Duration::from_millis(1000);
    let c = Cluster::start(3, 1, |cfg| {
        cfg.request.timeout_ms = 1000;
        cfg.request.slow_ms = 300;
    });
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    let filter = c.filter.clone();
    let (region, leader) = cluster::run({
        let (pd_addr, filter) = (pd_addr.clone(), filter.clone());
        move || async move {
            let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
            cluster::replicate_all(&pd, &kv, &ids).await;
            kv.put("k", "v1").await.unwrap();
            leader_that_cannot_commit(&pd, &kv, &filter, b"k").await
        }
    });
    let store = c.index_of(leader.store_id).expect("the leader's store");
    let shared = c.store(store).expect("running").shared().clone();
    let slow_before = shared.slow_requests.load(Ordering::Relaxed);
    let timed_out_before = shared.timed_out_requests.load(Ordering::Relaxed);
    cluster::run({
        let (pd_addr, region, leader) = (pd_addr.clone(), region.clone(), leader.clone());
        move || async move {
            let pd = cluster::pd_client(&pd_addr);
            let conn = store_conn(&pd, leader.store_id).await;
            let call_timeout = Some(Duration::from_secs(8));
            // A read: it waits for its read index, then the bound answers it.
            let t0 = Instant::now();
            let get = RawGetRequest { context: ctx(&region, Some(leader.clone())), key: "k".into() };
            let r: RawGetResponse = conn.call_msg(Method::RawGet, &get, call_timeout).await.expect("answered");
            let waited = t0.elapsed();
            match r.region_error.and_then(|e| e.kind) {
                Some(Kind::RequestTimeout(t)) => assert!(t.stage.contains("read index"), "{t:?}"),
                other => panic!("expected RequestTimeout, got {other:?}"),
            }
            assert!(waited >= bound && waited < bound * 4, "answered after {waited:?}, bound {bound:?}");
            // A write: it reaches the log, is durable here but cannot commit, and is answered as
            // undetermined, with the stage the slow-request sweep read off the peer.
            let put =
                RawPutRequest { context: ctx(&region, Some(leader.clone())), key: "k".into(), value: "v2".into() };
            let r: RawPutResponse = conn.call_msg(Method::RawPut, &put, call_timeout).await.expect("answered");
            match r.region_error.and_then(|e| e.kind) {
                Some(Kind::UndeterminedResult(u)) => assert!(u.stage.starts_with("persisted"), "{u:?}"),
                other => panic!("expected UndeterminedResult, got {other:?}"),
            }
        }
    });
    assert!(shared.timed_out_requests.load(Ordering::Relaxed) >= timed_out_before + 2);
    assert!(shared.slow_requests.load(Ordering::Relaxed) >= slow_before + 2, "both were logged as slow");
    // Healed: the undetermined write was in the log, and it applies.
    filter.clear();
    cluster::run(move || async move {
        let kv = cluster::kv_client(&pd_addr);
        cluster::wait_until(Duration::from_secs(20), "the undetermined write to apply", || {
            let kv = kv.clone();
            async move { kv.get("k").await.ok().flatten() == Some(Bytes::from("v2")) }
        })
        .await;
    });
    c.shutdown();
}

#[test]
fn a_split_region_elects_its_leader_without_waiting_an_election_timeout() {
    // Elections time out after 2-4 s here: a new region that had to wait for one would still
    // have no leader when the check below gives up.
    let c = Cluster::start(3, 1, |cfg| cfg.raft.election_ticks = 100);
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
        cluster::replicate_all(&pd, &kv, &ids).await;
        for k in ["a", "f", "k", "p", "u", "z"] {
            kv.put(k, k).await.unwrap();
        }
        // The split's new region campaigns next to the parent's leader as soon as the leader
        // applies the split — often before the followers have, so its vote requests reach
        // stores that do not have the region yet. They are held there until the split
        // applies. (Whether the followers are behind is a race; three splits make it likely.)
        for key in ["d", "m", "s"] {
            let (_, right) = kv.split(key).await.expect("split");
            let t0 = Instant::now();
            cluster::wait_until(Duration::from_millis(1500), "the new region's leader", || {
                let (pd, kv, right) = (pd.clone(), kv.clone(), right.clone());
                async move {
                    let views = cluster::replica_views(&pd, &kv, &right).await;
                    views.iter().any(|(_, v)| v.as_ref().is_some_and(|v| v.is_leader))
                }
            })
            .await;
            tracing::info!("region {} had a leader {:?} after the split at {key}", right.id, t0.elapsed());
        }
        assert_eq!(kv.get("z").await.unwrap(), Some(Bytes::from("z")));
    });
    c.shutdown();
}

#[test]
fn a_leader_moved_to_another_shard_leads_again_without_waiting_an_election_timeout() {
    // Elections time out after 2-4 s here. A split places its new region on the emptier
    // shard, so the leader elected next to the parent is handed over to shard 1 at once;
    // there it used to restart as a follower and wait for an election timeout (2.3 s of no
    // answers in `percore-bench ycsb --shards 2`). It now campaigns as it lands.
    let c = Cluster::start(1, 2, |cfg| cfg.raft.election_ticks = 100);
    let pd_addr = c.pd_addr();
    let shared = c.store(0).expect("store 0").shared().clone();
    cluster::run(move || async move {
        let kv = cluster::kv_client(&pd_addr);
        for k in ["a", "f", "k", "p", "u", "z"] {
            kv.put(k, k).await.unwrap();
        }
        let (_, right) = kv.split("m").await.expect("split");
        let t0 = Instant::now();
        cluster::wait_until(Duration::from_millis(1500), "the moved region led on shard 1", || {
            let shared = shared.clone();
            async move {
                shared.region_counts[1].load(Ordering::SeqCst) == 1
                    && shared.leader_counts[1].load(Ordering::SeqCst) == 1
            }
        })
        .await;
        tracing::info!("region {} led on shard 1 {:?} after the split", right.id, t0.elapsed());
        kv.put("x", "x").await.unwrap();
        assert_eq!(kv.get("u").await.unwrap(), Some(Bytes::from("u")));
    });
    c.shutdown();
}
