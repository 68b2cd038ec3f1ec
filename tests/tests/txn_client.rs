//! The transactional client against a 3-store cluster: conflicting writers (one commits,
//! the other gets a retryable write conflict), a crashed client's locks resolved by readers
//! (an expired transaction rolled back; a transaction whose primary committed while its
//! secondaries did not, rolled forward), read-your-writes and a snapshot read across regions.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use net::kv::{KvClient, TxnClient, TxnConfig, TxnError};
use net::proto::kvrpcpb::*;
use net::{Client, Method};
use pd::PdClient;
use percore_tests::cluster::{self, Cluster};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A client that prewrites (and maybe commits the primary) by hand, then "crashes".
async fn crashed_client(pd: &PdClient, kv: &KvClient, keys: &[&str], ttl_ms: u64, commit_primary: bool) -> u64 {
    let start = pd.get_ts().await.unwrap();
    for k in keys {
        let (region, leader) = cluster::leader_of(pd, kv, k.as_bytes()).await;
        let c: Client = cluster::store_conn(pd, leader.store_id).await;
        let req = KvPrewriteRequest {
            context: cluster::ctx(&region, None),
            mutations: vec![Mutation { op: Op::Put as i32, key: b(k), value: b(&format!("{k}-from-{start}")) }],
            primary_lock: b(keys[0]),
            start_version: start,
            lock_ttl: ttl_ms,
            min_commit_ts: 0,
            one_pc_commit_ts: 0,
            try_one_pc: false,
        };
        let r: KvPrewriteResponse = c.call_msg(Method::KvPrewrite, &req, None).await.unwrap();
        assert!(r.errors.is_empty() && r.error.is_empty() && r.region_error.is_none(), "{r:?}");
    }
    if commit_primary {
        let commit = pd.get_ts().await.unwrap();
        let (region, leader) = cluster::leader_of(pd, kv, keys[0].as_bytes()).await;
        let c: Client = cluster::store_conn(pd, leader.store_id).await;
        let req = KvCommitRequest {
            context: cluster::ctx(&region, None),
            keys: vec![b(keys[0])],
            start_version: start,
            commit_version: commit,
        };
        let r: KvCommitResponse = c.call_msg(Method::KvCommit, &req, None).await.unwrap();
        assert!(r.key_error.is_none() && r.error.is_empty() && r.region_error.is_none(), "{r:?}");
    }
    start
}

#[test]
fn transactions_through_the_client() {
    let c = Cluster::start(3, 1, |_| {});
    let pd_addr = c.pd_addr();
    cluster::run(move || async move {
        let pd = Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = TxnClient::new(kv.clone(), pd.clone(), TxnConfig::default());
        cluster::wait_until(Duration::from_secs(60), "3 replicas", || {
            let pd = pd.clone();
            async move { pd.get_region(b"").await.is_ok_and(|r| r.region.peers.len() >= 3) }
        })
        .await;
        kv.split("m").await.expect("split at m");

        // Read-your-writes, and a commit over two regions.
        let mut t = txn.begin().await.unwrap();
        t.put("a", "1");
        t.put("z", "26");
        assert_eq!(t.get("a").await.unwrap(), Some(b("1")));
        t.commit().await.unwrap();
        let mut snap = txn.begin().await.unwrap();
        assert_eq!(snap.scan("", "", 0).await.unwrap(), vec![(b("a"), b("1")), (b("z"), b("26"))]);

        // Conflicting writers: both read "a", both write it; the first to commit wins.
        let mut t1 = txn.begin().await.unwrap();
        let mut t2 = txn.begin().await.unwrap();
        let v1 = t1.get("a").await.unwrap();
        let v2 = t2.get("a").await.unwrap();
        assert_eq!(v1, v2);
        t1.put("a", "2");
        t2.put("a", "3");
        t1.commit().await.expect("the first writer commits");
        match t2.commit().await {
            Err(e @ TxnError::WriteConflict { .. }) => assert!(e.is_retryable()),
            other => panic!("expected a write conflict, got {other:?}"),
        }
        let mut r = txn.begin().await.unwrap();
        assert_eq!(r.get("a").await.unwrap(), Some(b("2")));

        // A client crashed after prewriting (TTL 300 ms). A reader reads past its locks (it
        // pushes the transaction's min_commit_ts above its own timestamp) and sees the old
        // values; a writer waits out the TTL and rolls the dead transaction back; the dead
        // client's late commit is then refused.
        let dead = crashed_client(&pd, &kv, &["b", "y"], 300, false).await;
        let mut r = txn.begin().await.unwrap();
        assert_eq!(r.get("b").await.unwrap(), None);
        assert_eq!(r.get("y").await.unwrap(), None);
        let mut w = txn.begin().await.unwrap();
        assert!(dead < w.start_ts());
        w.put("b", "after");
        w.commit().await.expect("the key is free once the dead lock expired");
        let (region, leader) = cluster::leader_of(&pd, &kv, b"b").await;
        let conn = cluster::store_conn(&pd, leader.store_id).await;
        let late = KvCommitRequest {
            context: cluster::ctx(&region, None),
            keys: vec![b("b")],
            start_version: dead,
            commit_version: pd.get_ts().await.unwrap(),
        };
        let r: KvCommitResponse = conn.call_msg(Method::KvCommit, &late, None).await.unwrap();
        assert!(r.key_error.is_some_and(|e| e.txn_lock_not_found.is_some()), "the dead client's late commit");
        // Its secondary is rolled back by the next reader that meets it.
        let mut r = txn.begin().await.unwrap();
        assert_eq!(r.get("y").await.unwrap(), None);
        assert_eq!(r.get("b").await.unwrap(), Some(b("after")));

        // A client crashed after committing its primary but none of its secondaries: the
        // transaction is committed; a reader rolls the secondary forward.
        let half = crashed_client(&pd, &kv, &["c", "x"], 60_000, true).await;
        let mut r = txn.begin().await.unwrap();
        assert_eq!(r.get("x").await.unwrap(), Some(b(&format!("x-from-{half}"))));
        assert_eq!(r.get("c").await.unwrap(), Some(b(&format!("c-from-{half}"))));
        // And a scan over both regions sees the whole transaction.
        let mut s = txn.begin().await.unwrap();
        let keys: Vec<Bytes> = s.scan("", "", 0).await.unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b("a"), b("b"), b("c"), b("x"), b("z")]);
    });
    c.shutdown();
}
