//! The embedded cluster: a PD and `stores` stores of `shards` shards in this process, with
//! data in a temporary directory removed afterwards. Stores use the production
//! configuration (100 ms raft tick, 96 MiB region split size, …), listen on loopback ports
//! chosen by the kernel, and run on the server CPUs; PD shares the first of them.
//!
//! When the stores' shards outnumber the CPUs (several stores on a 2-CPU machine), shards do
//! not spin before they sleep (`spin-before-park-us = 0`): on a shared CPU a spinning shard
//! only delays the others (measured: YCSB-A, 3 stores on one CPU, 13.9k → 17.5k ops/s).
//!
//! PD does not schedule replicas yet, so with several stores this module does the replica
//! checker's job once before the load, as the test harness does: every region gets a peer
//! on every store, added as a learner and promoted to voter once it has applied the
//! region's data, one membership change at a time. Regions split later keep their peers.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use core_shard::placement::{format_cpus, CpuList, ShardPlacement};
use net::kv::{KvClient, KvConfig};
use net::proto::metapb::{Peer, PeerRole, Region};
use net::proto::raft_cmdpb::ConfChangeType;
use pd::{PdClient, PdClientConfig, PdServer};
use raftstore::{Config, StoreHandle};

/// How to build the cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Stores; every region is replicated on all of them.
    pub stores: usize,
    /// Shards per store.
    pub shards: usize,
    /// CPUs of the shards (and PD, on the first).
    pub cpus: Vec<usize>,
    /// Parent of the data directory [default: the system's temporary directory].
    pub dir: Option<PathBuf>,
    /// The configuration file stores start from [default: `Config::default()`].
    pub config: Option<PathBuf>,
}

impl EmbeddedOptions {
    /// Whether the stores' shards outnumber their CPUs (then no shard spins when idle).
    pub fn cpus_shared(&self) -> bool {
        self.stores * self.shards > self.cpus.len()
    }
}

/// A running embedded cluster; stopped (and its data removed) by [`EmbeddedCluster::stop`]
/// or on drop.
pub struct EmbeddedCluster {
    stores: Vec<StoreHandle>,
    pd: Option<PdServer>,
    dir: Option<tempfile::TempDir>,
    pd_addr: String,
}

impl EmbeddedCluster {
    /// Starts PD and the stores, waits for the first region's leader, and replicates it
    /// to every store.
    pub fn start(o: &EmbeddedOptions) -> anyhow::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("percore-bench-ycsb-");
        let dir = match &o.dir {
            Some(parent) => {
                std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
                builder.tempdir_in(parent)?
            }
            None => builder.tempdir()?,
        };
        let pd_place = ShardPlacement { cpus: vec![o.cpus[0]], oversubscribed: false };
        let pd = PdServer::start(dir.path().join("pd"), "127.0.0.1:0", pd_place).map_err(anyhow::Error::msg)?;
        let pd_addr = pd.addr().to_string();
        let mut cluster = EmbeddedCluster { stores: Vec::new(), pd: Some(pd), dir: Some(dir), pd_addr };
        for i in 0..o.stores {
            let cfg = store_config(o, &cluster.data_dir().join(format!("store-{i}")))?;
            let store = raftstore::start_store(cfg, vec![cluster.pd_addr.clone()])
                .map_err(|e| anyhow::anyhow!("store {i}: {e}"))?;
            cluster.stores.push(store);
        }
        let ids: Vec<u64> = cluster.stores.iter().map(|s| s.store_id()).collect();
        let pd_addr = cluster.pd_addr.clone();
        on_client_executor(move || async move { prepare(&pd_addr, &ids).await })?;
        Ok(cluster)
    }

    /// PD's address.
    pub fn pd_addr(&self) -> &str {
        &self.pd_addr
    }

    /// Reads the busy time of every shard of every store together.
    pub fn busy_probe(&self) -> super::runner::BusyProbe {
        let shared: Vec<_> = self.stores.iter().map(|s| s.shared().clone()).collect();
        super::runner::BusyProbe(std::sync::Arc::new(move || shared.iter().map(|s| s.busy()).sum()))
    }

    /// Where the data lives.
    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Stops the stores and PD and removes the data.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        let mut first_err = None;
        for s in self.stores.drain(..) {
            if let Err(e) = s.stop() {
                first_err = first_err.or(Some(anyhow::anyhow!("stopping a store: {e}")));
            }
        }
        if let Some(pd) = self.pd.take() {
            pd.stop();
        }
        if let Some(dir) = self.dir.take() {
            dir.close().context("removing the embedded cluster's data")?;
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

fn store_config(o: &EmbeddedOptions, dir: &Path) -> anyhow::Result<Config> {
    let base = match &o.config {
        Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    let cfg = Config {
        addr: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        shards: Some(o.shards),
        cpus: Some(format_cpus(CpuList::from_cpus(o.cpus.iter().copied())?.cpus())),
        // A shard spinning on a CPU other stores' shards need only takes their time.
        spin_before_park_us: if o.cpus_shared() { 0 } else { base.spin_before_park_us },
        ..base
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// Runs `f` on a fresh unpinned executor (used before the client threads exist).
fn on_client_executor<F, Fut>(f: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .name("ycsb-setup")
        .io_memory(256 << 10)
        .spawn(f)
        .map_err(|e| anyhow::anyhow!("setup executor: {e}"))?
        .join()
        .map_err(|e| anyhow::anyhow!("setup executor: {e}"))?
}

/// Waits until the cluster takes writes, then replicates every region to every store.
async fn prepare(pd_addr: &str, stores: &[u64]) -> anyhow::Result<()> {
    let pd = PdClient::new(PdClientConfig::new(vec![pd_addr.to_string()]));
    let kv = KvClient::new(Rc::new(pd.clone()), KvConfig::default());
    // The probe key sorts before every YCSB key (`user…`), so scans never see it.
    kv.put("percore-bench-probe", "1").await.context("the embedded cluster does not take writes")?;
    if stores.len() > 1 {
        replicate(&pd, &kv, stores).await?;
        kv.put("percore-bench-probe", "2").await.context("the replicated cluster does not take writes")?;
    }
    kv.delete("percore-bench-probe").await?;
    Ok(())
}

/// Adds a voter on every store of `stores` to every region lacking one: first a learner,
/// promoted once it applied past its initial state. Gives up after 60 s.
async fn replicate(pd: &PdClient, kv: &KvClient, stores: &[u64]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = false;
        for r in pd.scan_regions(b"", b"", 0).await? {
            for &s in stores {
                let change = match r.region.peers.iter().find(|p| p.store_id == s).cloned() {
                    Some(p) if p.role == PeerRole::Learner as i32 => {
                        if !learner_caught_up(pd, kv, &r.region, s).await {
                            missing = true;
                            break;
                        }
                        Some((ConfChangeType::AddNode, p))
                    }
                    Some(_) => None,
                    None => {
                        let id = pd.alloc_id().await?;
                        Some((ConfChangeType::AddLearnerNode, Peer { id, store_id: s, role: PeerRole::Learner as i32 }))
                    }
                };
                let Some((change, peer)) = change else { continue };
                missing = true;
                if let Err(e) = kv.change_peer(r.region.id, change, peer).await {
                    tracing::debug!("{change:?} in region {} on store {s}: {e}", r.region.id);
                }
                break; // one membership change at a time per region
            }
        }
        if !missing {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("regions were not replicated to stores {stores:?} within 60 s");
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the learner of `region` on `store` has applied entries past its initial state.
async fn learner_caught_up(pd: &PdClient, kv: &KvClient, region: &Region, store: u64) -> bool {
    let Ok((s, _)) = pd.get_store(store).await else { return false };
    for addr in std::iter::once(&s.address).chain(s.shard_addresses.iter()) {
        if let Ok(r) = kv.region_debug(addr, region.id).await {
            if r.region_error.is_none() {
                return r.applied_index > 5;
            }
        }
    }
    false
}
