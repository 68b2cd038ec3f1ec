//! MVCC GC: PD's safe point (persisted, never moving back), the locks of transactions older
//! than it resolved before it is raised, and the stores' background GC removing the versions
//! no read at or after it can see — while every read at or after it is unchanged.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use net::kv::{TxnClient, TxnConfig};
use net::proto::kvrpcpb::*;
use net::Method;
use percore_tests::cluster::{self, Cluster};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn gc_removes_what_no_read_after_the_safe_point_sees() {
    let c = Cluster::start(1, 1, |cfg| cfg.gc.interval_ms = 100);
    let pd_addr = c.pd_addr();
    cluster::run(move || async move {
        let pd = Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = TxnClient::new(kv.clone(), pd.clone(), TxnConfig::default());
        // A client that died after prewriting, before the safe point.
        let (region, leader) = cluster::leader_of(&pd, &kv, b"dead").await;
        let conn = cluster::store_conn(&pd, leader.store_id).await;
        let dead_start = pd.get_ts().await.unwrap();
        let prewrite = KvPrewriteRequest {
            context: cluster::ctx(&region, None),
            mutations: vec![Mutation { op: Op::Put as i32, key: b("dead"), value: b("x") }],
            primary_lock: b("dead"),
            start_version: dead_start,
            lock_ttl: 50,
            min_commit_ts: 0,
            one_pc_commit_ts: 0,
            try_one_pc: false,
        };
        let r: KvPrewriteResponse = conn.call_msg(Method::KvPrewrite, &prewrite, None).await.unwrap();
        assert!(r.errors.is_empty() && r.error.is_empty(), "{r:?}");

        // Five versions of one key, and one version of another.
        let mut commits = Vec::new();
        for i in 1..=5 {
            let mut t = txn.begin().await.unwrap();
            t.put("k", format!("v{i}"));
            if i == 1 {
                t.put("other", "o1");
            }
            commits.push(t.commit().await.unwrap());
        }
        let read = |ts: u64| {
            let txn = txn.clone();
            async move { txn.snapshot(ts).get("k").await.unwrap() }
        };
        assert_eq!(read(commits[0]).await, Some(b("v1")));

        // GC at the third commit: its locks first, then the safe point.
        let safe_point = commits[2];
        assert!(dead_start < safe_point);
        glommio::timer::sleep(Duration::from_millis(100)).await; // its TTL passes
        assert_eq!(txn.resolve_locks_before(safe_point).await.unwrap(), 1);
        let locks: KvScanLockResponse = conn
            .call_msg(
                Method::KvScanLock,
                &KvScanLockRequest {
                    context: cluster::ctx(&region, None),
                    max_version: u64::MAX,
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        assert!(locks.locks.is_empty(), "{locks:?}");
        assert_eq!(pd.update_gc_safe_point(safe_point).await.unwrap(), safe_point);
        assert_eq!(pd.update_gc_safe_point(commits[0]).await.unwrap(), safe_point, "it never moves back");
        assert_eq!(pd.get_gc_safe_point().await.unwrap(), safe_point);

        // The background GC removes the versions below the newest one at the safe point.
        cluster::wait_until(Duration::from_secs(30), "v1 and v2 collected", || {
            let first = commits[0];
            async move { read(first).await.is_none() }
        })
        .await;
        assert_eq!(read(commits[1]).await, None);
        assert_eq!(read(commits[2]).await, Some(b("v3")));
        assert_eq!(read(commits[3]).await, Some(b("v4")));
        assert_eq!(read(commits[4]).await, Some(b("v5")));
        // A key whose only version is below the safe point keeps it.
        assert_eq!(txn.snapshot(safe_point).get("other").await.unwrap(), Some(b("o1")));
        let mut now = txn.begin().await.unwrap();
        assert_eq!(now.get("k").await.unwrap(), Some(b("v5")));
        assert_eq!(now.get("dead").await.unwrap(), None);
    });
    c.shutdown();
}

/// The GC acceptance: 100,000 overwrites of 1,000 keys, a safe point at now, and the
/// write family holds at most 2 versions of every key once GC has run (seen through the MVCC
/// dump `percore-ctl mvcc` prints) — while the newest values still read back.
#[test]
fn after_many_overwrites_gc_leaves_at_most_two_versions_per_key() {
    const KEYS: usize = 1_000;
    const ROUNDS: usize = 100;
    const GROUP: usize = 10; // keys per transaction
    const TASKS: usize = 20;
    let c = Cluster::start(1, 1, |cfg| cfg.gc.interval_ms = 100);
    let pd_addr = c.pd_addr();
    cluster::run(move || async move {
        let pd = Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = TxnClient::new(kv.clone(), pd.clone(), TxnConfig::default());
        let key = |i: usize| Bytes::from(format!("gc-{i:04}"));
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let txn = txn.clone();
            tasks.push(glommio::spawn_local(async move {
                for round in 0..ROUNDS {
                    for group in (task..KEYS / GROUP).step_by(TASKS) {
                        let mut t = txn.begin().await.unwrap();
                        for i in group * GROUP..(group + 1) * GROUP {
                            t.put(key(i), format!("r{round}"));
                        }
                        t.commit().await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let versions = |k: Bytes| {
            let txn = txn.clone();
            async move { txn.mvcc(k).await.unwrap().writes.len() }
        };
        assert_eq!(versions(key(7)).await, ROUNDS, "every overwrite is a version before GC");

        let now = pd.get_ts().await.unwrap();
        assert_eq!(txn.resolve_locks_before(now).await.unwrap(), 0);
        pd.update_gc_safe_point(now).await.unwrap();
        cluster::wait_until(Duration::from_secs(60), "GC to leave at most 2 versions of every key", || async move {
            for i in 0..KEYS {
                if versions(key(i)).await > 2 {
                    return false;
                }
            }
            true
        })
        .await;
        let mut t = txn.begin().await.unwrap();
        for i in [0, 499, 999] {
            assert_eq!(t.get(key(i)).await.unwrap(), Some(Bytes::from(format!("r{}", ROUNDS - 1))));
        }
    });
    c.shutdown();
}
