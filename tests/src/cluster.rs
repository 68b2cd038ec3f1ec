//! The in-process cluster: a PD and N stores × M shards.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::kv::{KvClient, KvConfig};
use net::proto::adminpb::RegionDebugResponse;
use net::proto::kvrpcpb::Context;
use net::proto::metapb::{Peer, PeerRole, Region};
use net::proto::raft_cmdpb::ConfChangeType;
use net::{Client, ConnConfig};
use pd::{PdClient, PdClientConfig, PdServer};
use raftstore::{Config, StoreHandle};

use crate::filter::ClusterFilter;

/// A PD and stores in this process, with data in a temporary directory.
pub struct Cluster {
    /// Holds every store's and PD's files.
    pub dir: tempfile::TempDir,
    pd: Option<PdServer>,
    stores: Vec<Option<StoreHandle>>,
    cfgs: Vec<Config>,
    ids: Vec<u64>,
    /// The transport filter every store consults.
    pub filter: Arc<ClusterFilter>,
}

/// Turns on logging for tests once (`RUST_LOG` decides what is printed).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

impl Cluster {
    /// Starts PD and `stores` stores of `shards` shards; `tweak` adjusts each store's config
    /// (which starts from `Config::for_tests`).
    pub fn start(stores: usize, shards: usize, tweak: impl Fn(&mut Config)) -> Cluster {
        init_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let one = core_shard::placement::resolve_online(Some(1), None, Default::default()).expect("a CPU");
        let pd = PdServer::start(dir.path().join("pd"), "127.0.0.1:0", one).expect("PD starts");
        let mut c = Cluster {
            dir,
            pd: Some(pd),
            stores: Vec::new(),
            cfgs: Vec::new(),
            ids: Vec::new(),
            filter: Arc::new(ClusterFilter::default()),
        };
        for i in 0..stores {
            let mut cfg = Config::for_tests();
            cfg.addr = "127.0.0.1:0".into();
            cfg.data_dir = c.dir.path().join(format!("store-{i}"));
            cfg.shards = Some(shards);
            tweak(&mut cfg);
            c.cfgs.push(cfg);
            c.stores.push(None);
            c.ids.push(0);
            c.restart(i);
        }
        c
    }

    /// PD's address.
    pub fn pd_addr(&self) -> String {
        self.pd.as_ref().map(|p| p.addr().to_string()).unwrap_or_default()
    }

    /// Number of stores (running or not).
    pub fn len(&self) -> usize {
        self.stores.len()
    }

    /// Whether the cluster has no store.
    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// The store id of store `i`.
    pub fn store_id(&self, i: usize) -> u64 {
        self.ids[i]
    }

    /// The index of the store with id `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.ids.iter().position(|&x| x == id)
    }

    /// Whether store `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.stores[i].is_some()
    }

    /// The running store `i`.
    pub fn store(&self, i: usize) -> Option<&StoreHandle> {
        self.stores[i].as_ref()
    }

    /// Stops store `i` (its raft logs are synced; RocksDB's WAL-less writes not flushed are
    /// lost, as after a crash, and replayed from the log at restart).
    pub fn stop(&mut self, i: usize) {
        if let Some(s) = self.stores[i].take() {
            s.stop().expect("store stops");
        }
    }

    /// (Re)starts store `i` from its directory.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        let store = raftstore::start_store(self.cfgs[i].clone(), vec![self.pd_addr()]).expect("store starts");
        store.shared().set_filter(Some(self.filter.clone()));
        self.ids[i] = store.store_id();
        self.stores[i] = Some(store);
    }

    /// Adds a store (same configuration as store 0) and starts it; returns its index.
    pub fn add_store(&mut self) -> usize {
        let i = self.stores.len();
        let mut cfg = self.cfgs[0].clone();
        cfg.data_dir = self.dir.path().join(format!("store-{i}"));
        self.cfgs.push(cfg);
        self.stores.push(None);
        self.ids.push(0);
        self.restart(i);
        i
    }

    /// Stops every store and PD.
    pub fn shutdown(mut self) {
        for i in 0..self.stores.len() {
            self.stop(i);
        }
        if let Some(pd) = self.pd.take() {
            pd.stop();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.stores.len() {
            if let Some(s) = self.stores[i].take() {
                let _ = s.stop();
            }
        }
        if let Some(pd) = self.pd.take() {
            pd.stop();
        }
    }
}

/// Runs client code on a fresh executor (the test's client side) and returns its result.
pub fn run<T: Send + 'static, F: Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
    spawn(f).join().expect("client executor panicked")
}

/// Starts client code on a fresh executor thread like [`run`], without waiting for it: the
/// test thread can meanwhile stop and restart stores. `join()` the handle for the result.
pub fn spawn<T: Send + 'static, F: Future<Output = T> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) -> glommio::ExecutorJoinHandle<T> {
    glommio::LocalExecutorBuilder::default()
        .io_memory(256 << 10)
        .spin_before_park(Duration::from_micros(50))
        .spawn(f)
        .expect("client executor")
}

/// A PD client.
pub fn pd_client(pd_addr: &str) -> PdClient {
    PdClient::new(PdClientConfig::new(vec![pd_addr.to_string()]))
}

/// A routing KV client through PD.
pub fn kv_client(pd_addr: &str) -> KvClient {
    KvClient::new(Rc::new(pd_client(pd_addr)), KvConfig::default())
}

/// Pauses every PD scheduler (tests that change membership by hand).
pub async fn pause_schedulers(pd: &PdClient) {
    for s in pd.schedulers().await.expect("list schedulers") {
        pd.pause_scheduler(&s.name, true).await.expect("pause scheduler");
    }
}

/// Waits until `cond` holds, checking every 20 ms; panics with `what` after `timeout`.
pub async fn wait_until<F: Future<Output = bool>>(timeout: Duration, what: &str, mut cond: impl FnMut() -> F) {
    let start = Instant::now();
    while !cond().await {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds a voter on every store of `stores` to every region lacking one, by hand (PD's
/// schedulers are paused first, so that the test decides membership alone): first as a learner, promoted once it has the
/// region's data, so that the quorum never depends on a peer still catching up. Waits until
/// every region has them all.
pub async fn replicate_all(pd: &PdClient, kv: &KvClient, stores: &[u64]) {
    pause_schedulers(pd).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let regions = pd.scan_regions(b"", b"", 0).await.expect("scan regions");
        let mut missing = false;
        for r in regions {
            for &s in stores {
                let existing = r.region.peers.iter().find(|p| p.store_id == s).cloned();
                let change = match existing {
                    Some(p) if p.role == PeerRole::Learner as i32 => {
                        // Promote once the learner applied something past its initial state.
                        let views = replica_views(pd, kv, &r.region).await;
                        let ready =
                            views.iter().any(|(st, v)| *st == s && v.as_ref().is_some_and(|v| v.applied_index > 5));
                        if !ready {
                            missing = true;
                            break;
                        }
                        Some((ConfChangeType::AddNode, p))
                    }
                    Some(_) => None,
                    None => {
                        let id = pd.alloc_id().await.expect("alloc id");
                        Some((ConfChangeType::AddLearnerNode, Peer { id, store_id: s, role: PeerRole::Learner as i32 }))
                    }
                };
                let Some((change, peer)) = change else { continue };
                missing = true;
                if let Err(e) = kv.change_peer(r.region.id, change, peer).await {
                    tracing::debug!("{change:?} in region {} on store {s}: {e}", r.region.id);
                }
                // One membership change at a time per region.
                break;
            }
        }
        if !missing {
            return;
        }
        assert!(Instant::now() < deadline, "regions were not replicated to {stores:?} within 60 s");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// Each replica's view of `region` (from the store hosting each peer).
pub async fn replica_views(pd: &PdClient, kv: &KvClient, region: &Region) -> Vec<(u64, Option<RegionDebugResponse>)> {
    let mut out = Vec::new();
    for p in &region.peers {
        let view = match pd.get_store(p.store_id).await {
            Ok((store, _)) => {
                let mut found = None;
                for addr in std::iter::once(&store.address).chain(store.shard_addresses.iter()) {
                    if let Ok(r) = kv.region_debug(addr, region.id).await {
                        if r.region_error.is_none() {
                            found = Some(r);
                            break;
                        }
                    }
                }
                found
            }
            Err(_) => None,
        };
        out.push((p.store_id, view));
    }
    out
}

/// Waits until every replica of every region has applied the same index and holds the same
/// data (per-region CRC32C of keys and values); returns the number of regions checked.
pub async fn wait_replicas_converge(pd: &PdClient, kv: &KvClient, timeout: Duration) -> usize {
    let start = Instant::now();
    loop {
        let regions = pd.scan_regions(b"", b"", 0).await.expect("scan regions");
        let mut all_same = true;
        let mut detail = String::new();
        for r in &regions {
            let views = replica_views(pd, kv, &r.region).await;
            let sums: Vec<Option<(u64, u64)>> =
                views.iter().map(|(_, v)| v.as_ref().map(|v| (v.checksum, v.key_count))).collect();
            let applied: Vec<Option<u64>> = views.iter().map(|(_, v)| v.as_ref().map(|v| v.applied_index)).collect();
            if sums.iter().any(|s| s.is_none())
                || sums.windows(2).any(|w| w[0] != w[1])
                || applied.windows(2).any(|w| w[0] != w[1])
            {
                all_same = false;
                detail = format!("region {}: checksums {sums:?}, applied {applied:?}", r.region.id);
                break;
            }
        }
        if all_same {
            return regions.len();
        }
        if start.elapsed() > timeout {
            panic!("replicas did not converge within {timeout:?}: {detail}");
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection straight to one store's main address, bypassing the routing client.
pub async fn store_conn(pd: &PdClient, store: u64) -> Client {
    let (s, _) = pd.get_store(store).await.expect("store known to PD");
    Client::connect(&s.address, ConnConfig::default()).await.expect("connect to the store")
}

/// The request context naming `region` (its id and epoch) and, if given, the peer addressed.
pub fn ctx(region: &Region, peer: Option<Peer>) -> Option<Context> {
    Some(Context { region_id: region.id, region_epoch: region.region_epoch.clone(), peer })
}

/// The region holding `key` and its leader, as the leader's own replica sees them; panics
/// after 20 s without one.
pub async fn leader_of(pd: &PdClient, kv: &KvClient, key: &[u8]) -> (Region, Peer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(route) = pd.get_region(key).await {
            for (store, view) in replica_views(pd, kv, &route.region).await {
                let Some(v) = view.filter(|v| v.is_leader) else { continue };
                let peer = v.region.as_ref().and_then(|r| r.peers.iter().find(|p| p.store_id == store)).cloned();
                if let (Some(r), Some(p)) = (v.region, peer) {
                    return (r, p);
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader for {key:?} within 20 s");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}
