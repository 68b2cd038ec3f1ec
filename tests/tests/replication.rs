//! Replication on 3 stores × 2 shards: a follower misses writes while stopped, the log is
//! compacted past it, and it catches up through a snapshot; a leader's store stops and a new
//! leader serves quickly; no acknowledged write is lost; replicas end identical.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use percore_tests::cluster::{self, Cluster};
use percore_tests::workload;

fn small_log(cfg: &mut raftstore::Config) {
    cfg.raft.log_gc_count_limit = 100;
    cfg.raft.log_gc_keep = 10;
    cfg.raft.log_gc_interval_ms = 100;
    cfg.raft.flush_interval_ms = 100;
}

#[test]
fn follower_catches_up_through_a_snapshot_after_log_compaction() {
    let mut c = Cluster::start(3, 2, small_log);
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    let acked = workload::acked();
    // Replicate and write the first half.
    let (a, p) = (acked.clone(), pd_addr.clone());
    let follower = cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        cluster::replicate_all(&pd, &kv, &ids).await;
        let s = workload::write_keys(&kv, 10, 500, 64, &a, Duration::from_secs(60)).await;
        assert_eq!(s.acked, 5000);
        let route = pd.get_region(b"").await.unwrap();
        let leader = route.leader.map(|l| l.store_id).unwrap_or(0);
        *ids.iter().find(|&&s| s != leader).unwrap()
    });
    // Stop a follower; keep writing until the leader's log is compacted past it.
    let fi = c.index_of(follower).unwrap();
    c.stop(fi);
    let (a, p) = (acked.clone(), pd_addr.clone());
    let a2 = a.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        let before = a2.lock().unwrap().len();
        let acked2 = workload::acked();
        // Other keys than the first round (clients 10..20).
        let mut tasks = Vec::new();
        for c in 10..20 {
            let (kv, acked2) = (kv.clone(), acked2.clone());
            tasks.push(glommio::spawn_local(async move {
                for i in 0..500 {
                    kv.put(workload::key(c, i), workload::value(c, i, 64)).await.unwrap();
                    acked2.lock().unwrap().insert(workload::key(c, i), workload::value(c, i, 64));
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let more = acked2.lock().unwrap().clone();
        a2.lock().unwrap().extend(more);
        assert_eq!(a2.lock().unwrap().len(), before + 5000);
        // The leader compacts its log well past what the stopped follower has.
        cluster::wait_until(Duration::from_secs(30), "log compaction on the leader", || {
            let (pd, kv) = (pd.clone(), kv.clone());
            async move {
                let r = pd.get_region(b"").await.unwrap();
                let views = cluster::replica_views(&pd, &kv, &r.region).await;
                views.iter().filter_map(|(_, v)| v.as_ref()).any(|v| v.is_leader && v.truncated_index > 5000)
            }
        })
        .await;
    });
    let snaps_before = 0;
    c.restart(fi);
    let p = pd_addr.clone();
    let a = acked.clone();
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        let n = cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(60)).await;
        assert!(n >= 1);
        workload::verify(&kv, &a).await;
    });
    let snaps = c.store(fi).unwrap().shared().snapshots_applied.load(Ordering::Relaxed);
    assert!(snaps > snaps_before, "the restarted follower must have caught up through a snapshot");
    c.shutdown();
}

#[test]
fn a_new_leader_serves_within_two_election_timeouts_after_the_leaders_store_stops() {
    let mut c = Cluster::start(3, 2, |_| {});
    let pd_addr = c.pd_addr();
    let ids: Vec<u64> = (0..3).map(|i| c.store_id(i)).collect();
    let election = Duration::from_millis(c_election_ms());
    let acked = workload::acked();
    let (a, p) = (acked.clone(), pd_addr.clone());
    let leader = cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        cluster::replicate_all(&pd, &kv, &ids).await;
        workload::write_keys(&kv, 4, 200, 32, &a, Duration::from_secs(60)).await;
        pd.get_region(b"").await.unwrap().leader.unwrap().store_id
    });
    let li = c.index_of(leader).unwrap();
    c.stop(li);
    let stopped_at = Instant::now();
    let (a, p) = (acked.clone(), pd_addr.clone());
    let took = cluster::run(move || async move {
        let kv = cluster::kv_client(&p);
        // The first write that succeeds was served by the new leader.
        kv.put("after-failover", "1").await.unwrap();
        let took = stopped_at.elapsed();
        workload::verify(&kv, &a).await;
        took
    });
    // Two election timeouts: raft randomizes each in [election, 2 × election), so at most
    // 4 × election, plus 200 ms for the client to notice and retry.
    assert!(took < election * 4 + Duration::from_millis(200), "failover took {took:?}");
    eprintln!("failover: first write served {took:?} after the leader's store stopped (election timeout {election:?})");
    c.shutdown();
}

fn c_election_ms() -> u64 {
    let cfg = raftstore::Config::for_tests();
    cfg.raft.base_tick_ms * cfg.raft.election_ticks as u64
}
