//! The transactional API over TCP against a real store and PD: two-phase commit, a reader
//! that meets the lock of a client that died after committing its primary and resolves it,
//! conflicting writers, scans and lock scans, one-phase commit (at a timestamp the leader picks
//! after the reads it served; a client's own commit timestamp refused) — each command replicated
//! as a `TxnCommand` raft entry and processed at apply.

use std::time::Duration;

use bytes::Bytes;
use net::proto::kvrpcpb::*;
use net::{Client, ConnConfig, Method};
use prost::Message;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put(k: &str, v: &str) -> Mutation {
    Mutation { op: Op::Put as i32, key: b(k), value: b(v) }
}

struct Txn<'a> {
    c: &'a Client,
    ctx: Context,
}

impl Txn<'_> {
    async fn call<Req: Message, Resp: Message + Default>(&self, m: Method, req: &Req) -> Resp {
        self.c.call_msg(m, req, None).await.unwrap()
    }

    async fn prewrite(&self, muts: Vec<Mutation>, primary: &str, start: u64, one_pc: u64) -> KvPrewriteResponse {
        self.prewrite_with(muts, primary, start, one_pc, false).await
    }

    async fn prewrite_with(
        &self,
        muts: Vec<Mutation>,
        primary: &str,
        start: u64,
        one_pc_commit_ts: u64,
        try_one_pc: bool,
    ) -> KvPrewriteResponse {
        let req = KvPrewriteRequest {
            context: Some(self.ctx.clone()),
            mutations: muts,
            primary_lock: b(primary),
            start_version: start,
            lock_ttl: 3_000,
            min_commit_ts: 0,
            one_pc_commit_ts,
            try_one_pc,
        };
        self.call(Method::KvPrewrite, &req).await
    }

    async fn commit(&self, keys: &[&str], start: u64, commit: u64) -> KvCommitResponse {
        let req = KvCommitRequest {
            context: Some(self.ctx.clone()),
            keys: keys.iter().map(|k| b(k)).collect(),
            start_version: start,
            commit_version: commit,
        };
        self.call(Method::KvCommit, &req).await
    }

    async fn get(&self, key: &str, version: u64) -> KvGetResponse {
        let req = KvGetRequest { context: Some(self.ctx.clone()), key: b(key), version, resolved_locks: vec![] };
        self.call(Method::KvGet, &req).await
    }
}

#[test]
fn transactions_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let one = core_shard::placement::resolve_online(Some(1), None, Default::default()).unwrap();
    let pd = pd::PdServer::start(dir.path().join("pd"), "127.0.0.1:0", one).unwrap();
    let mut cfg = raftstore::Config::for_tests();
    cfg.addr = "127.0.0.1:0".into();
    cfg.data_dir = dir.path().join("store");
    cfg.shards = Some(1);
    let store = raftstore::start_store(cfg, vec![pd.addr().to_string()]).unwrap();
    let addr = store.addrs()[0].clone();
    let pd_addr = pd.addr().to_string();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let pdc = pd::PdClient::new(pd::PdClientConfig::new(vec![pd_addr]));
            let route = pdc.get_region(b"k").await.unwrap();
            let ctx =
                Context { region_id: route.region.id, region_epoch: route.region.region_epoch.clone(), peer: None };
            let c = Client::connect(&addr, ConnConfig::default()).await.unwrap();
            let t = Txn { c: &c, ctx: ctx.clone() };
            // Wait for the leader: a read at ts 1 answers once it leads.
            let mut led = false;
            for _ in 0..200 {
                let r = t.get("warmup", 1).await;
                if r.region_error.is_none() && r.error.is_empty() {
                    led = true;
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            assert!(led, "the region never got a leader");

            // Two-phase commit of two keys; the client "dies" after committing the primary.
            let start = pdc.get_ts().await.unwrap();
            let r = t.prewrite(vec![put("acct-a", "70"), put("acct-b", "30")], "acct-a", start, 0).await;
            assert!(r.errors.is_empty() && r.error.is_empty() && r.region_error.is_none(), "{r:?}");
            // Another transaction starts before the commit.
            let other_start = pdc.get_ts().await.unwrap();
            let commit = pdc.get_ts().await.unwrap();
            let r = t.commit(&["acct-a"], start, commit).await;
            assert!(r.key_error.is_none() && r.error.is_empty(), "{r:?}");

            // A reader after the commit meets the secondary's lock…
            let read_ts = pdc.get_ts().await.unwrap();
            assert_eq!(t.get("acct-a", read_ts).await.value, b("70"));
            let r = t.get("acct-b", read_ts).await;
            let lock = r.key_error.and_then(|e| e.locked).expect("acct-b is locked");
            assert_eq!((lock.primary_lock, lock.lock_version), (b("acct-a"), start));
            // …asks the primary, learns it committed, and resolves the secondary.
            let st: KvCheckTxnStatusResponse = t
                .call(
                    Method::KvCheckTxnStatus,
                    &KvCheckTxnStatusRequest {
                        context: Some(ctx.clone()),
                        primary_key: b("acct-a"),
                        lock_ts: start,
                        caller_start_ts: read_ts,
                        current_ts: read_ts,
                        rollback_if_not_exist: true,
                    },
                )
                .await;
            assert_eq!((st.action, st.commit_version), (TxnAction::Committed as i32, commit), "{st:?}");
            let locks: KvScanLockResponse = t
                .call(
                    Method::KvScanLock,
                    &KvScanLockRequest { context: Some(ctx.clone()), max_version: read_ts, ..Default::default() },
                )
                .await;
            assert_eq!(locks.locks.len(), 1, "{locks:?}");
            let r: KvResolveLockResponse = t
                .call(
                    Method::KvResolveLock,
                    &KvResolveLockRequest {
                        context: Some(ctx.clone()),
                        start_version: start,
                        commit_version: commit,
                        keys: vec![b("acct-b")],
                    },
                )
                .await;
            assert!(r.key_error.is_none() && r.error.is_empty(), "{r:?}");
            assert_eq!(t.get("acct-b", read_ts).await.value, b("30"));
            assert!(t.get("acct-b", start).await.not_found, "invisible before the commit");

            // A writer that started before that commit conflicts.
            let r = t.prewrite(vec![put("acct-a", "0")], "acct-a", other_start, 0).await;
            let conflict = r.errors.first().and_then(|e| e.conflict.clone()).expect("a write conflict");
            assert_eq!(conflict.conflict_commit_ts, commit);

            // A client's own one-phase commit timestamp is refused: only the leader knows
            // which reads it served.
            let s2 = pdc.get_ts().await.unwrap();
            let c2 = pdc.get_ts().await.unwrap();
            let r = t.prewrite(vec![put("acct-c", "5")], "acct-c", s2, c2).await;
            assert!(r.error.contains("chosen by the region's leader"), "{r:?}");
            assert!(t.get("acct-c", c2).await.not_found);
            let r = t.prewrite(vec![put("acct-c", "5")], "acct-c", s2, 0).await;
            assert!(r.errors.is_empty() && r.error.is_empty(), "{r:?}");
            assert!(t.commit(&["acct-c"], s2, c2).await.key_error.is_none());
            assert_eq!(t.get("acct-c", c2).await.value, b("5"));

            // Asked for, one-phase commit commits at once (no lock) at a timestamp after every
            // read the leader served — here a read far ahead of the start. Until the new
            // leader has synced its read timestamps with the TSO it prewrites instead.
            let mut one_pc = None;
            for attempt in 0..100 {
                let start = pdc.get_ts().await.unwrap();
                let ahead = pdc.get_ts().await.unwrap() + (1 << 20);
                assert!(t.get("acct-d", ahead).await.not_found);
                let key = format!("acct-d{attempt}");
                let r = t.prewrite_with(vec![put(&key, "7")], &key, start, 0, true).await;
                assert!(r.errors.is_empty() && r.error.is_empty(), "{r:?}");
                if r.one_pc_commit_ts != 0 {
                    one_pc = Some((key, start, ahead, r.one_pc_commit_ts));
                    break;
                }
                let commit = pdc.get_ts().await.unwrap();
                assert!(t.commit(&[&key], start, commit).await.key_error.is_none());
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            let (key, start, ahead, commit) = one_pc.expect("the leader never committed in one phase");
            assert!(commit > ahead, "one-phase commit at {commit}, not after the read at {ahead}");
            assert!(t.get(&key, commit - 1).await.not_found, "visible before its commit timestamp");
            assert_eq!(t.get(&key, commit).await.value, b("7"));
            // Retried (the answer was lost): nothing new, the first commit is reported.
            let r = t.prewrite_with(vec![put(&key, "7")], &key, start, 0, true).await;
            assert_eq!((r.errors.len(), r.one_pc_commit_ts), (0, commit), "{r:?}");
            // Its commit needs no second phase: a commit request finds no lock, only the record.
            let locks: KvScanLockResponse = t
                .call(
                    Method::KvScanLock,
                    &KvScanLockRequest {
                        context: Some(t.ctx.clone()),
                        max_version: u64::MAX,
                        start_key: b(&key),
                        end_key: Bytes::new(),
                        limit: 0,
                    },
                )
                .await;
            assert!(locks.locks.is_empty(), "{locks:?}");

            let scan: KvScanResponse = t
                .call(
                    Method::KvScan,
                    &KvScanRequest {
                        context: Some(ctx.clone()),
                        start_key: b("acct-"),
                        end_key: b("acct."),
                        limit: 10,
                        version: pdc.get_ts().await.unwrap(),
                        resolved_locks: vec![],
                    },
                )
                .await;
            let keys: Vec<Bytes> = scan.pairs.iter().map(|p| p.key.clone()).collect();
            assert_eq!(keys, vec![b("acct-a"), b("acct-b"), b("acct-c")], "{scan:?}");

            // Bad input: a mutation with an unknown op is refused with a clear error, nothing
            // written.
            let bad = t.prewrite(vec![Mutation { op: 99, key: b("x"), value: b("y") }], "x", s2 + 10, 0).await;
            assert!(bad.error.contains("unknown mutation op"), "{bad:?}");
            // Raw KV does not see transactional keys.
            let raw: RawGetResponse =
                t.call(Method::RawGet, &RawGetRequest { context: Some(ctx.clone()), key: b("acct-a") }).await;
            assert!(raw.not_found, "{raw:?}");
        })
        .unwrap()
        .join()
        .unwrap();
    store.stop().unwrap();
    pd.stop();
}
