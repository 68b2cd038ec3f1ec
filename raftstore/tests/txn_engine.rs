//! The transaction layer on the shard's real RocksDB: commands processed against an engine
//! snapshot, their modifications through the `TxnWrite` wire form into a write batch, and a
//! region's transactional data carried by `scan_region` / `put_region_pair` (raft snapshots,
//! hand-overs) and removed by `clear_region`.

use raftstore::config::StorageConfig;
use raftstore::engine::{KvEngine, RAW_FAMILY};
use raftstore::txn::actions::{self, Mutation, TxnProps};
use raftstore::txn::{wire, MvccReader, TxnCommand, TxnResponse};
use rocksdb::{Cache, WriteBatch};

fn open(dir: &std::path::Path) -> KvEngine {
    let cache = Cache::new_lru_cache(8 << 20);
    KvEngine::open(dir, &cache, &StorageConfig::default()).expect("open engine")
}

/// Processes `cmd` on a snapshot and applies its modifications as the apply path does: the
/// wire form of a `TxnWrite` request, decoded, into one write batch.
fn run(engine: &KvEngine, cmd: TxnCommand) -> TxnResponse {
    let snap = engine.snapshot().unwrap();
    let p = cmd.process(&snap).expect("process");
    let req = wire::txn_write_request(&p.modifies);
    let modifies = wire::decode_modifies(req.txn_write.as_ref().unwrap()).unwrap();
    let mut wb = WriteBatch::default();
    engine.put_modifies(&mut wb, &modifies).unwrap();
    engine.write(wb).expect("write");
    p.response
}

fn get(engine: &KvEngine, key: &[u8], ts: u64) -> Option<Vec<u8>> {
    let snap = engine.snapshot().unwrap();
    actions::get(&MvccReader::new(&snap), key, ts, &[]).unwrap()
}

fn props(primary: &[u8], start_ts: u64) -> TxnProps {
    TxnProps { start_ts, primary: primary.to_vec(), lock_ttl_ms: 3_000, min_commit_ts: 0, one_pc_commit_ts: None }
}

fn transfer(engine: &KvEngine, from: &[u8], to: &[u8], amount: &[u8], start_ts: u64, commit_ts: u64) {
    let mutations = vec![Mutation::Put(from.to_vec(), amount.to_vec()), Mutation::Put(to.to_vec(), amount.to_vec())];
    let r = run(engine, TxnCommand::Prewrite { mutations, props: props(from, start_ts) });
    assert_eq!(r, TxnResponse::Prewrite { errors: vec![], committed: None });
    for k in [from, to] {
        run(engine, TxnCommand::Commit { keys: vec![k.to_vec()], start_ts, commit_ts });
    }
}

#[test]
fn transactions_commit_and_read_back_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    transfer(&engine, b"acct-1", b"acct-2", b"50", 10, 20);
    let long = vec![b'x'; 1000];
    transfer(&engine, b"acct-1", b"acct-3", &long, 30, 40);
    assert_eq!(get(&engine, b"acct-1", 19), None);
    assert_eq!(get(&engine, b"acct-1", 25).as_deref(), Some(&b"50"[..]));
    assert_eq!(get(&engine, b"acct-1", 40), Some(long.clone()));
    assert_eq!(get(&engine, b"acct-2", 40).as_deref(), Some(&b"50"[..]));
    let snap = engine.snapshot().unwrap();
    let all = actions::scan(&MvccReader::new(&snap), b"acct-", b"acct.", 10, 45, &[]).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], (b"acct-3".to_vec(), long));
    // Raw KV does not see transactional keys.
    assert_eq!(engine.get(b"zacct-1").unwrap(), None);
}

#[test]
fn a_locked_key_blocks_readers_on_rocksdb_until_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let mutations = vec![Mutation::Put(b"p".to_vec(), b"1".to_vec()), Mutation::Put(b"s".to_vec(), b"2".to_vec())];
    run(&engine, TxnCommand::Prewrite { mutations, props: props(b"p", 10) });
    run(&engine, TxnCommand::Commit { keys: vec![b"p".to_vec()], start_ts: 10, commit_ts: 20 });
    let snap = engine.snapshot().unwrap();
    assert!(actions::get(&MvccReader::new(&snap), b"s", 30, &[]).is_err());
    let status = run(
        &engine,
        TxnCommand::CheckTxnStatus {
            primary: b"p".to_vec(),
            start_ts: 10,
            caller_start_ts: 30,
            current_ts: 0,
            rollback_if_not_exist: true,
        },
    );
    assert_eq!(status, TxnResponse::Status(actions::TxnStatus::Committed { commit_ts: 20 }));
    run(&engine, TxnCommand::ResolveLock { keys: vec![b"s".to_vec()], start_ts: 10, commit_ts: Some(20) });
    assert_eq!(get(&engine, b"s", 30).as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_regions_transactional_data_moves_with_it_and_is_cleared_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir.path().join("a"));
    transfer(&engine, b"k1", b"k2", b"v", 10, 20);
    let mutations = vec![Mutation::Put(b"k3".to_vec(), b"pending".to_vec())];
    run(&engine, TxnCommand::Prewrite { mutations, props: props(b"k3", 30) });
    let mut wb = WriteBatch::default();
    wb.put(b"zk1", b"raw");
    engine.write(wb).unwrap();

    // What a snapshot or a hand-over carries: raw and transactional pairs of the range.
    let mut pairs = Vec::new();
    engine
        .snapshot()
        .unwrap()
        .scan_region(b"k", b"l", |family, k, v| {
            pairs.push((family, k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
    let families: std::collections::BTreeSet<u32> = pairs.iter().map(|p| p.0).collect();
    assert!(families.contains(&RAW_FAMILY) && families.len() == 3, "{families:?}");
    let other = open(&dir.path().join("b"));
    let mut wb = WriteBatch::default();
    for (family, k, v) in &pairs {
        other.put_region_pair(&mut wb, *family, k, v).unwrap();
    }
    assert!(other.put_region_pair(&mut WriteBatch::default(), 7, b"k", b"v").is_err());
    other.write(wb).unwrap();
    assert_eq!(get(&other, b"k2", 25).as_deref(), Some(&b"v"[..]));
    assert_eq!(other.get(b"zk1").unwrap().as_deref(), Some(&b"raw"[..]));
    let snap = other.snapshot().unwrap();
    assert!(actions::get(&MvccReader::new(&snap), b"k3", 35, &[]).is_err(), "the lock moved too");

    // Clearing the region removes every family's data of its range, and only that.
    transfer(&engine, b"m1", b"m2", b"w", 50, 60);
    let region = net::proto::metapb::Region {
        id: 1,
        start_key: b"k".to_vec().into(),
        end_key: b"l".to_vec().into(),
        ..Default::default()
    };
    let mut wb = WriteBatch::default();
    engine.clear_region(&mut wb, &region);
    engine.write(wb).unwrap();
    let mut left = 0;
    engine
        .snapshot()
        .unwrap()
        .scan_region(b"", b"", |_, _, _| {
            left += 1;
            true
        })
        .unwrap();
    assert_eq!(left, 2, "the two write records of m1 and m2 stay");
    assert_eq!(get(&engine, b"k1", 25), None);
    assert_eq!(get(&engine, b"m1", 60).as_deref(), Some(&b"w"[..]));
}

/// Set in the child process of `a_flush_persists_every_family_before_a_crash`: the directory
/// to write, flush and crash in.
const CRASH_CHILD_DIR: &str = "PERCORE_TXN_ENGINE_CRASH_DIR";

/// Apply writes skip RocksDB's WAL, so what survives a crash is what a flush persisted. A
/// child process commits a transaction (lock, write and default families) and a raw key,
/// flushes, writes more that no flush covers, and aborts without closing the database; the
/// reopened database has the flushed transaction in every family and nothing after it.
#[test]
fn a_flush_persists_every_family_before_a_crash() {
    if let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) {
        let dir = std::path::PathBuf::from(dir);
        let ex = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let engine = open(&dir);
                let long = vec![b'v'; 1000]; // long values go to the default family
                transfer(&engine, b"a1", b"a2", &long, 10, 20);
                let mut wb = WriteBatch::default();
                wb.put(b"zraw", b"1");
                engine.write(wb).unwrap();
                engine.flush().await.expect("flush");
                transfer(&engine, b"b1", b"b2", b"x", 30, 40);
                std::process::abort();
            })
            .unwrap();
        let _ = ex.join();
        unreachable!("the child aborts");
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_flush_persists_every_family_before_a_crash", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child crashed");
    let engine = open(dir.path());
    assert_eq!(get(&engine, b"a1", 25), Some(vec![b'v'; 1000]), "flushed: write and default families");
    assert_eq!(get(&engine, b"a2", 25), Some(vec![b'v'; 1000]));
    assert_eq!(engine.get(b"zraw").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&engine, b"b1", 45), None, "written after the flush, lost in the crash");
}
