//! The routing client's retry loop where no store is needed: unreachable stores, a failing
//! route source, invalid arguments. Behaviour against real stores is tested where the store
//! lives (cluster tests).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::kv::{KvClient, KvConfig, KvError, Route, RouteSource};
use net::proto::metapb::{Peer, Region, RegionEpoch, Store};
use net::proto::raft_cmdpb::ConfChangeType;
use net::server::LocalBoxFuture;
use net::ConnConfig;

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default().io_memory(256 << 10).spawn(f).unwrap().join().unwrap();
}

/// An address nothing listens on.
fn refused_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Routes from a fixed table; counts the questions; can be told to fail.
#[derive(Default)]
struct Table {
    regions: Vec<Route>,
    stores: HashMap<u64, Store>,
    fail: Option<String>,
    asked: RefCell<Vec<String>>,
}

impl Table {
    fn answer<T: 'static>(&self, q: String, f: impl FnOnce() -> Option<T>) -> LocalBoxFuture<Result<T, String>> {
        self.asked.borrow_mut().push(q.clone());
        let r = match &self.fail {
            Some(e) => Err(e.clone()),
            None => f().ok_or_else(|| format!("nothing for {q}")),
        };
        Box::pin(async move { r })
    }
}

impl RouteSource for Table {
    fn region_by_key(&self, key: &[u8]) -> LocalBoxFuture<Result<Route, String>> {
        let found = self.regions.iter().find(|r| net::kv::cache::contains(&r.region, key)).cloned();
        self.answer(format!("key {key:?}"), || found)
    }
    fn region_by_id(&self, id: u64) -> LocalBoxFuture<Result<Route, String>> {
        let found = self.regions.iter().find(|r| r.region.id == id).cloned();
        self.answer(format!("region {id}"), || found)
    }
    fn scan_regions(&self, _start: &[u8], _end: &[u8], _limit: u32) -> LocalBoxFuture<Result<Vec<Route>, String>> {
        let all = self.regions.clone();
        self.answer("scan".into(), || Some(all))
    }
    fn store(&self, store_id: u64) -> LocalBoxFuture<Result<Store, String>> {
        let found = self.stores.get(&store_id).cloned();
        self.answer(format!("store {store_id}"), || found)
    }
}

fn peer(id: u64, store_id: u64) -> Peer {
    Peer { id, store_id, role: 0 }
}

/// Regions 1 ["", "m") and 2 ["m", ""), each with peers on stores 1..=3 where nothing
/// listens; region 1's leader is on store 1.
fn unreachable_cluster() -> Table {
    let region = |id: u64, start: &str, end: &str| Region {
        id,
        start_key: Bytes::copy_from_slice(start.as_bytes()),
        end_key: Bytes::copy_from_slice(end.as_bytes()),
        region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
        peers: (1..=3).map(|s| peer(id * 10 + s, s)).collect(),
    };
    let stores = (1..=3)
        .map(|id| {
            (id, Store { id, address: refused_addr(), shard_addresses: vec![refused_addr()], ..Store::default() })
        })
        .collect();
    Table {
        regions: vec![
            Route { region: region(1, "", "m"), leader: Some(peer(11, 1)), leader_shard: Some(0) },
            Route { region: region(2, "m", ""), leader: None, leader_shard: None },
        ],
        stores,
        ..Table::default()
    }
}

fn config(deadline_ms: u64) -> KvConfig {
    let conn = ConnConfig { connect_timeout: Duration::from_millis(200), ..ConnConfig::default() };
    KvConfig { deadline: Duration::from_millis(deadline_ms), conn, ..KvConfig::default() }
}

fn assert_deadline(r: Result<impl std::fmt::Debug, KvError>, needle: &str) {
    match r {
        Err(KvError::DeadlineExceeded { last_error, retries, .. }) => {
            assert!(last_error.contains(needle), "last error {last_error:?} should mention {needle:?}");
            assert!(retries > 0);
        }
        other => panic!("expected a deadline error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn unreachable_stores_are_probed_in_turn_until_the_deadline() {
    run(|| async {
        let table = Rc::new(unreachable_cluster());
        let kv = KvClient::new(table.clone(), config(800));
        let t0 = Instant::now();
        assert_deadline(kv.get("a").await, "cannot connect");
        assert!(t0.elapsed() < Duration::from_millis(1500), "gave up late: {:?}", t0.elapsed());
        let stats = kv.stats();
        assert!(stats.retries(net::kv::RetryCause::Network) >= 3, "{stats:?}");
        assert_eq!(stats.requests, stats.total_retries() + 1, "{stats:?}");
        assert!(stats.backoffs >= 3, "{stats:?}");
        let asked = table.asked.borrow();
        // Every voter's store was tried (addresses are re-asked after a failure), and after a
        // full round the region was reloaded.
        for s in 1..=3 {
            assert!(asked.contains(&format!("store {s}")), "store {s} never tried: {asked:?}");
        }
        assert!(asked.iter().filter(|q| q.starts_with("key")).count() >= 2, "{asked:?}");
    });
}

#[test]
fn batches_and_walks_give_up_at_the_deadline_too() {
    run(|| async {
        let kv = KvClient::new(Rc::new(unreachable_cluster()), config(300));
        let keys: Vec<Bytes> = ["a", "z", "b"].into_iter().map(Bytes::from).collect();
        assert_deadline(kv.batch_get(keys).await, "cannot connect");
        assert_deadline(kv.scan("", "", 10, false, false).await, "cannot connect");
        assert_deadline(kv.scan("", "", 10, true, false).await, "cannot connect");
        assert_deadline(kv.delete_range("a", "z").await, "cannot connect");
        // Both regions were located.
        assert!(kv.cached_region(b"a").is_some() || kv.cached_region(b"z").is_some());
    });
}

#[test]
fn route_source_failures_are_retried_and_named() {
    run(|| async {
        let table = Rc::new(Table { fail: Some("PD is down".into()), ..Table::default() });
        let kv = KvClient::new(table.clone(), config(400));
        assert_deadline(kv.put("k", "v").await, "PD is down");
        assert_deadline(kv.transfer_leader(7, peer(1, 1)).await, "PD is down");
        let stats = kv.stats();
        assert!(stats.retries(net::kv::RetryCause::RouteSource) >= 2, "{stats:?}");
        assert_eq!(stats.requests, 0);
    });
}

#[test]
fn invalid_arguments_fail_at_once_and_empty_work_is_free() {
    run(|| async {
        let table = Rc::new(Table { fail: Some("must not be asked".into()), ..Table::default() });
        let kv = KvClient::new(table.clone(), config(10_000));
        let invalid = |r: Result<(), KvError>| assert!(matches!(r, Err(KvError::InvalidArgument { .. })), "{r:?}");
        invalid(kv.split("").await.map(|_| ()));
        invalid(kv.scan("b", "a", 0, false, false).await.map(|_| ()));
        invalid(kv.delete_range("b", "a").await);
        invalid(kv.change_peer(1, ConfChangeType::AddNode, peer(0, 1)).await.map(|_| ()));
        assert_eq!(kv.scan("a", "a", 0, true, false).await, Ok(vec![]));
        assert_eq!(kv.batch_get(vec![]).await, Ok(vec![]));
        assert_eq!(kv.batch_put(vec![]).await, Ok(()));
        assert_eq!(kv.batch_delete(vec![]).await, Ok(()));
        assert!(table.asked.borrow().is_empty());
    });
}

/// A store that takes writes (after 2 ms) and never answers reads.
#[derive(Default)]
struct StuckReads {
    reads: std::cell::Cell<u64>,
    writes: std::cell::Cell<u64>,
}

impl net::server::Service for StuckReads {
    fn call(&self, method: net::Method, _payload: Bytes) -> LocalBoxFuture<net::server::HandlerResult> {
        use prost::Message;
        match method {
            net::Method::RawPut => {
                self.writes.set(self.writes.get() + 1);
                Box::pin(async {
                    glommio::timer::sleep(Duration::from_millis(2)).await;
                    Ok(net::proto::kvrpcpb::RawPutResponse::default().encode_to_vec().into())
                })
            }
            net::Method::RawGet => {
                self.reads.set(self.reads.get() + 1);
                Box::pin(std::future::pending())
            }
            _ => Box::pin(async { Err(net::server::status(net::proto::rpcpb::StatusCode::Unimplemented, "no")) }),
        }
    }
}

#[test]
fn a_read_timing_out_leaves_the_connection_and_the_writes_on_it_alone() {
    run(|| async {
        let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let store = Rc::new(StuckReads::default());
        let server_stats = Rc::new(net::server::ServerStats::default());
        glommio::spawn_local(net::server::serve(listener, store.clone(), ConnConfig::default(), server_stats.clone()))
            .detach();
        let region = Region {
            id: 1,
            region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
            peers: vec![peer(11, 1)],
            ..Region::default()
        };
        let table = Table {
            regions: vec![Route { region, leader: Some(peer(11, 1)), leader_shard: Some(0) }],
            stores: [(1, Store { id: 1, address: addr.clone(), shard_addresses: vec![addr], ..Store::default() })]
                .into(),
            ..Table::default()
        };
        let conn = ConnConfig { call_timeout: Duration::from_millis(100), ..ConnConfig::default() };
        let kv = KvClient::new(
            Rc::new(table),
            KvConfig { deadline: Duration::from_millis(700), conn, ..KvConfig::default() },
        );
        // Connect once before the concurrent calls (which would otherwise race to connect).
        kv.put("first", "v").await.unwrap();
        assert_eq!(server_stats.accepted.get(), 1);
        let reader = {
            let kv = kv.clone();
            glommio::spawn_local(async move { kv.get("r").await })
        };
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let kv = kv.clone();
                glommio::spawn_local(async move {
                    let until = Instant::now() + Duration::from_millis(900);
                    let mut results = Vec::new();
                    let mut i = 0;
                    while Instant::now() < until {
                        results.push(kv.put(format!("w{w}-{i}"), "v").await);
                        i += 1;
                    }
                    results
                })
            })
            .collect();
        assert_deadline(reader.await, "timed out");
        for w in writers {
            for r in w.await {
                assert_eq!(r, Ok(()), "a write failed because another call on its connection timed out");
            }
        }
        assert!(store.reads.get() >= 3, "the read was retried after each timeout: {}", store.reads.get());
        assert!(store.writes.get() >= 50, "writes went on meanwhile: {}", store.writes.get());
        assert_eq!(server_stats.accepted.get(), 1, "timeouts must not cost the connection");
    });
}
