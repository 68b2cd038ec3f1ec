//! Starting and stopping a store: its shard pool, each shard's engines, service and raft
//! loop, the start-up agreement on which shard hosts which region, and (optionally) an
//! embedded PD.
//!
//! Start-up of a shard: open its RocksDB and raft log, listen on its port, load its regions
//! and report them to shard 0; shard 0 makes sure the store has an identity (bootstrapping
//! the cluster if needed), resolves regions found on two shards (an interrupted handover:
//! the higher `handover_seq` wins), and sends every shard the directory and what to drop.
//! Then each shard starts its peers and raft loop, and shard 0 registers the store's shard
//! addresses with PD.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use core_shard::log::{LogConfig, LogEngine};
use core_shard::placement::{resolve_online, CpuList, PlacementPolicy, ShardPlacement};
use core_shard::runtime::{PoolConfig, Shard as RtShard, ShardPool};
use net::proto::pdpb::StoreStats;
use pd::{PdClient, PdClientConfig};

use crate::bootstrap::ensure_store;
use crate::config::Config;
use crate::ctx::{ShardCtx, ShardParts};
use crate::engine::KvEngine;
use crate::error::{Result, StoreError};
use crate::inbox;
use crate::msg::{Event, ShardMsg};
use crate::service::{ShardService, StoreService};
use crate::shard::Shard;
use crate::shared::StoreShared;
use crate::startup::{self, StartupSink};
use crate::transport::Transport;

/// A running store.
pub struct StoreHandle {
    pool: Option<ShardPool<ShardMsg, std::result::Result<(), String>>>,
    shared: Arc<StoreShared>,
    store_id: u64,
    addrs: Vec<String>,
}

impl StoreHandle {
    /// The store id.
    pub fn store_id(&self) -> u64 {
        self.store_id
    }

    /// Each shard's client address.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// State shared by the store's shards (region counts, transport filter).
    pub fn shared(&self) -> &Arc<StoreShared> {
        &self.shared
    }

    /// Stops every shard (raft loops end, logs are synced and closed) and waits.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        let Some(pool) = self.pool.take() else { return Ok(()) };
        self.shared.stopping.store(true, Ordering::SeqCst);
        pool.shutdown();
        let mut first_err = None;
        for r in pool.join() {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_err = first_err.or(Some(StoreError::Identity(e))),
                Err(e) => first_err = first_err.or(Some(StoreError::Io(e.to_string()))),
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Resolves the shard placement from the configuration.
pub fn placement_of(cfg: &Config) -> Result<ShardPlacement> {
    let cpus: Option<CpuList> = match &cfg.cpus {
        Some(s) => {
            Some(s.parse().map_err(|e: core_shard::placement::PlacementError| StoreError::Identity(e.to_string()))?)
        }
        None => None,
    };
    let policy: PlacementPolicy = cfg
        .placement
        .parse()
        .map_err(|e: core_shard::placement::PlacementError| StoreError::Identity(e.to_string()))?;
    // An existing store keeps its shard count.
    let shards = match crate::bootstrap::Ident::load(&cfg.data_dir)? {
        Some(id) => Some(cfg.shards.unwrap_or(id.shards)),
        None => cfg.shards,
    };
    resolve_online(shards, cpus.as_ref(), policy).map_err(|e| StoreError::Identity(e.to_string()))
}

/// Starts a store with `cfg` against the PD at `pd_endpoints`; returns once every shard
/// serves and the store is registered with PD.
pub fn start_store(cfg: Config, pd_endpoints: Vec<String>) -> Result<StoreHandle> {
    cfg.validate().map_err(|e| StoreError::Identity(e.to_string()))?;
    let placement = placement_of(&cfg)?;
    let shards = placement.shards();
    let shared = StoreShared::new(shards);
    let cache = rocksdb::Cache::new_lru_cache(cfg.storage.block_cache_mb << 20);
    let (ready_tx, ready_rx) = flume::bounded::<std::result::Result<(u64, Vec<String>), String>>(shards);
    let mut pool_cfg = PoolConfig::new("store", placement);
    pool_cfg.tick_interval = cfg.base_tick();
    pool_cfg.spin_before_park = Duration::from_micros(cfg.spin_before_park_us);
    let shared2 = shared.clone();
    let cfg = Arc::new(cfg);
    let pool = ShardPool::<ShardMsg, std::result::Result<(), String>>::start(pool_cfg, move |shard| {
        let (cfg, shared, cache, ready, pd) =
            (cfg.clone(), shared2.clone(), cache.clone(), ready_tx.clone(), pd_endpoints.clone());
        async move {
            let id = shard.id;
            let r = run_shard(shard, (*cfg).clone(), shared, cache, pd, ready.clone()).await;
            if let Err(e) = &r {
                tracing::error!(shard = id, "shard failed: {e}");
                let _ = ready.send(Err(format!("shard {id}: {e}")));
            }
            r.map_err(|e| e.to_string())
        }
    })
    .map_err(|e| StoreError::Identity(e.to_string()))?;
    let mut handle = StoreHandle { pool: Some(pool), shared, store_id: 0, addrs: Vec::new() };
    match ready_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok((store_id, addrs))) => {
            handle.store_id = store_id;
            handle.addrs = addrs;
            Ok(handle)
        }
        Ok(Err(e)) => {
            let _ = handle.stop_inner();
            Err(StoreError::Identity(e))
        }
        Err(_) => {
            let _ = handle.stop_inner();
            Err(StoreError::Identity("the store did not start within 60 s".into()))
        }
    }
}

fn shard_addr(base: &str, shard: usize) -> String {
    match base.parse::<std::net::SocketAddr>() {
        Ok(mut a) if a.port() != 0 => {
            a.set_port(a.port() + shard as u16);
            a.to_string()
        }
        _ => base.to_string(),
    }
}

async fn run_shard(
    shard: RtShard<ShardMsg>,
    cfg: Config,
    shared: Arc<StoreShared>,
    cache: rocksdb::Cache,
    pd_endpoints: Vec<String>,
    ready: flume::Sender<std::result::Result<(u64, Vec<String>), String>>,
) -> Result<()> {
    let ctx = open_shard(&shard, cfg, shared, &cache, pd_endpoints).await?;
    let cfg = ctx.cfg.clone();
    let service = StoreService::new(ctx.clone());
    let startup = Rc::new(StartupSink::default());
    glommio::spawn_local(inbox::run(shard.inbox, ctx.clone(), service.clone(), startup.clone())).detach();
    let listener = glommio::net::TcpListener::bind(shard_addr(&cfg.addr, shard.id).as_str())
        .map_err(|e| StoreError::Io(format!("listen on {}: {e}", shard_addr(&cfg.addr, shard.id))))?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let stop = shard.shutdown.clone();
    let server = glommio::spawn_local(net::server::serve_until(
        listener,
        Rc::new(ShardService(service.clone())),
        net::ConnConfig::default(),
        Rc::new(net::server::ServerStats::default()),
        async move { stop.wait().await },
    ));
    // Shard 0 first makes sure the store exists (bootstrap may write the first region).
    let ident = if shard.id == 0 { Some(ensure_store(&ctx, &cfg.data_dir, shard.shards, &addr).await?) } else { None };
    let (store_id, peers) = startup::agree(&ctx, &startup, ident.map(|i| i.store_id), &addr).await?;
    tracing::info!(shard = shard.id, store_id, peers = peers.len(), %addr, "shard started");
    if shard.id == 0 {
        startup::register_store(&ctx, &addr, &ready).await?;
        spawn_store_heartbeats(ctx.clone());
    }
    spawn_raft_clock(&ctx, shard.ticks.clone());
    let raft_loop =
        ctx.queues.spawn_latency(Shard::new(ctx.clone(), peers).run()).map_err(|e| StoreError::Io(e.to_string()))?;
    shard.shutdown.wait().await;
    ctx.shared.stopping.store(true, Ordering::SeqCst);
    ctx.push(Event::Tick);
    let shard_id = shard.id;
    bounded(shard_id, "raft loop", raft_loop).await;
    ctx.drop_forwards();
    bounded(shard_id, "client connections", server).await;
    // Messages to shards that have already stopped can wait for room forever.
    bounded(shard_id, "cross-shard mailboxes", ctx.outbox.flush()).await;
    ctx.engine.close();
    ctx.log.close().await?;
    Ok(())
}

/// Opens a shard's raft log and RocksDB and builds its context.
async fn open_shard(
    shard: &RtShard<ShardMsg>,
    cfg: Config,
    shared: Arc<StoreShared>,
    cache: &rocksdb::Cache,
    pd_endpoints: Vec<String>,
) -> Result<Rc<ShardCtx>> {
    let dir: PathBuf = cfg.data_dir.join(format!("shard-{}", shard.id));
    let log_cfg = LogConfig {
        segment_size: cfg.storage.log_segment_mb << 20,
        cache_bytes: cfg.storage.log_cache_mb << 20,
        ..LogConfig::default()
    };
    let (log, _) = LogEngine::open(dir.join("raftlog"), log_cfg, shard.queues.into()).await?;
    let engine = KvEngine::open(&dir.join("kv"), cache, &cfg.storage)?;
    let pd = PdClient::new(PdClientConfig::new(pd_endpoints));
    let transport = Rc::new(Transport::new(shard.id, pd.clone(), shared.clone(), cfg.raft.snapshot_chunk_size));
    let ctx = Rc::new(ShardCtx::new(ShardParts {
        shard_id: shard.id,
        shards: shard.shards,
        cfg: Rc::new(cfg),
        engine,
        log,
        pd,
        outbox: shard.outbox.clone(),
        queues: shard.queues,
        transport,
        shared,
    }));
    // raft must hear how every snapshot transfer ended.
    let weak = Rc::downgrade(&ctx);
    ctx.transport.set_snapshot_reporter(Rc::new(move |region_id, to, ok| {
        if let Some(ctx) = weak.upgrade() {
            ctx.push(Event::SnapshotSent { region_id, to, ok });
        }
    }));
    Ok(ctx)
}

/// The raft clock: one tick event per base tick. It also expires the requests past their
/// bound, so a raft loop that falls behind does not hold their answers back.
fn spawn_raft_clock(ctx: &Rc<ShardCtx>, ticks: core_shard::tick::TickService) {
    let ctx = ctx.clone();
    let bound = ctx.cfg.request_timeout();
    glommio::spawn_local(async move {
        let mut seen = ticks.now();
        while let Some(now) = ticks.wait(seen).await {
            seen = now;
            ctx.requests.borrow_mut().expire_due(std::time::Instant::now(), bound);
            ctx.push(Event::Tick);
        }
    })
    .detach();
}

/// Waits for one step of a shard's shutdown, but not forever: a step that hangs is logged
/// (naming it) and abandoned, so that the store still stops and syncs its log.
async fn bounded<T>(shard: usize, step: &str, f: impl std::future::Future<Output = T>) {
    let timeout = glommio::timer::sleep(Duration::from_secs(5));
    let done = futures_lite::future::or(async { Some(f.await) }, async {
        timeout.await;
        None
    })
    .await;
    if done.is_none() {
        tracing::error!(shard, step, "shutdown step did not finish within 5 s; going on");
    }
}

/// Shard 0: store heartbeats with per-shard region and leader counts.
fn spawn_store_heartbeats(ctx: Rc<ShardCtx>) {
    glommio::spawn_local(async move {
        loop {
            let s = &ctx.shared;
            let regions: Vec<u32> = s.region_counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let leaders: Vec<u32> = s.leader_counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let (capacity, available) = disk_space(&ctx.cfg.data_dir);
            let stats = StoreStats {
                store_id: ctx.store_id.get(),
                region_count: regions.iter().sum(),
                leader_count: leaders.iter().sum(),
                shard_region_counts: regions,
                shard_leader_counts: leaders,
                capacity,
                available,
                gc_safe_point: s.gc_safe_point.load(Ordering::Relaxed),
                gc_versions_removed: s.gc_versions_removed.load(Ordering::Relaxed),
                ..Default::default()
            };
            match ctx.pd.store_heartbeat(stats).await {
                Ok(steps) => {
                    for step in steps {
                        crate::router::route_step(&ctx, step);
                    }
                }
                Err(e) => tracing::debug!("store heartbeat: {e}"),
            }
            glommio::timer::sleep(Duration::from_millis(ctx.cfg.pd.store_heartbeat_ms)).await;
            if ctx.shared.stopping.load(Ordering::Relaxed) {
                break;
            }
        }
    })
    .detach();
}

/// Capacity and available bytes of the file system holding `dir` (0, 0 if unknown).
fn disk_space(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return (0, 0) };
    // SAFETY: statvfs writes into the zeroed struct; the path is a valid C string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return (0, 0);
        }
        let frsize = st.f_frsize as u64;
        (st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize)
    }
}
