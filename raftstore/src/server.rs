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

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use core_shard::log::{LogConfig, LogEngine};
use core_shard::notify::Notify;
use core_shard::placement::{resolve_online, CpuList, PlacementPolicy, ShardPlacement};
use core_shard::runtime::{PoolConfig, Shard as RtShard, ShardPool};
use net::proto::metapb::Store;
use net::proto::pdpb::StoreStats;
use net::proto::raft_serverpb::PeerState;
use pd::{PdClient, PdClientConfig};
use rocksdb::WriteBatch;

use crate::bootstrap::ensure_store;
use crate::config::Config;
use crate::engine::{delete_data_range, KvEngine, StoredRegion};
use crate::error::{Result, StoreError};
use crate::keys;
use crate::peer::Peer;
use crate::service::{ShardService, StoreService};
use crate::shard::ctx::{ShardCtx, StoreShared};
use crate::shard::msg::{Event, ShardMsg};
use crate::shard::Shard;
use crate::transport::Transport;

/// Start-up messages a shard waits for.
#[derive(Default)]
pub struct StartupSink {
    msgs: RefCell<Vec<ShardMsg>>,
    notify: Notify,
}

impl StartupSink {
    /// Delivers a start-up message.
    pub fn deliver(&self, m: ShardMsg) {
        self.msgs.borrow_mut().push(m);
        self.notify.notify_all();
    }

    async fn take(&self, want: impl Fn(&ShardMsg) -> bool) -> ShardMsg {
        loop {
            let n = self.notify.notified();
            {
                let mut v = self.msgs.borrow_mut();
                if let Some(i) = v.iter().position(&want) {
                    return v.remove(i);
                }
            }
            n.await;
        }
    }
}

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
    let dir: PathBuf = cfg.data_dir.join(format!("shard-{}", shard.id));
    let log_cfg = LogConfig {
        segment_size: cfg.storage.log_segment_mb << 20,
        cache_bytes: cfg.storage.log_cache_mb << 20,
        ..LogConfig::default()
    };
    let (log, _) = LogEngine::open(dir.join("raftlog"), log_cfg, shard.queues.into()).await?;
    let engine = KvEngine::open(&dir.join("kv"), &cache, cfg.storage.write_buffer_mb)?;
    let pd = PdClient::new(PdClientConfig::new(pd_endpoints));
    let transport = Rc::new(Transport::new(shard.id, pd.clone(), shared.clone(), cfg.raft.snapshot_chunk_size));
    let cfg = Rc::new(cfg);
    let ctx = Rc::new(ShardCtx::new(
        shard.id,
        shard.shards,
        cfg.clone(),
        engine,
        log.clone(),
        pd,
        shard.outbox.clone(),
        shard.queues,
        transport,
        shared.clone(),
    ));
    {
        let weak = Rc::downgrade(&ctx);
        ctx.transport.set_snapshot_reporter(Rc::new(move |region_id, to, ok| {
            if let Some(ctx) = weak.upgrade() {
                ctx.push(Event::SnapshotSent { region_id, to, ok });
            }
        }));
    }
    let service = StoreService::new(ctx.clone());
    let startup = Rc::new(StartupSink::default());
    // Mailbox dispatcher.
    {
        let (ctx, service, startup) = (ctx.clone(), service.clone(), startup.clone());
        let inbox = shard.inbox;
        glommio::spawn_local(async move {
            let mut buf = Vec::new();
            while inbox.recv_into(&mut buf).await {
                for m in buf.drain(..) {
                    crate::router::dispatch(&ctx, &service, m, &startup);
                }
            }
        })
        .detach();
    }
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
    let stored = ctx.engine.load_regions()?;
    let summary: Vec<(u64, u64)> = stored.iter().map(|(id, s)| (*id, s.state.handover_seq)).collect();
    let loaded = ShardMsg::Loaded { shard: shard.id, regions: summary };
    let store_id = if let Some(ident) = ident {
        startup.deliver(loaded);
        coordinate_startup(&ctx, &startup, ident.store_id, &addr, &stored).await?
    } else {
        publish_addr(&ctx, &addr);
        let _ = ctx.outbox.send(0, loaded).await;
        0
    };
    let plan = startup.take(|m| matches!(m, ShardMsg::StartupPlan { .. })).await;
    let ShardMsg::StartupPlan { store_id: sid, directory, drop } = plan else { unreachable!("filtered above") };
    let store_id = if store_id == 0 { sid } else { store_id };
    ctx.store_id.set(store_id);
    ctx.transport.set_store_id(store_id);
    shared.store_id.store(store_id, Ordering::SeqCst);
    for (r, s) in directory {
        ctx.set_dir(r, Some(s));
    }
    let peers = start_peers(&ctx, stored, &drop)?;
    tracing::info!(shard = shard.id, store_id, peers = peers.len(), %addr, "shard started");
    if shard.id == 0 {
        register_store(&ctx, &startup, &addr, &ready).await?;
        spawn_store_heartbeats(ctx.clone());
    }
    // The raft clock.
    {
        let (ctx, ticks) = (ctx.clone(), shard.ticks.clone());
        glommio::spawn_local(async move {
            let mut seen = ticks.now();
            while let Some(now) = ticks.wait(seen).await {
                seen = now;
                ctx.push(Event::Tick);
            }
        })
        .detach();
    }
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
    log.close().await?;
    Ok(())
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

/// Publishes a shard's client address for shard 0 to register with PD.
fn publish_addr(ctx: &ShardCtx, addr: &str) {
    if let Ok(mut a) = ctx.shared.shard_addrs.write() {
        a[ctx.shard_id] = addr.to_string();
    }
}

/// Shard 0: collects what every shard loaded and sends the plan.
async fn coordinate_startup(
    ctx: &ShardCtx,
    startup: &StartupSink,
    store_id: u64,
    addr: &str,
    _own: &[(u64, StoredRegion)],
) -> Result<u64> {
    publish_addr(ctx, addr);
    let mut best: HashMap<u64, (usize, u64)> = HashMap::new();
    let mut all: Vec<(u64, usize, u64)> = Vec::new();
    for _ in 0..ctx.shards {
        let ShardMsg::Loaded { shard, regions } = startup.take(|m| matches!(m, ShardMsg::Loaded { .. })).await else {
            unreachable!("filtered above")
        };
        for (r, seq) in regions {
            all.push((r, shard, seq));
            let e = best.entry(r).or_insert((shard, seq));
            if seq > e.1 {
                *e = (shard, seq);
            }
        }
    }
    let directory: Vec<(u64, usize)> = best.iter().map(|(r, (s, _))| (*r, *s)).collect();
    for to in 0..ctx.shards {
        let drop: Vec<u64> = all.iter().filter(|(r, s, _)| *s == to && best[r].0 != to).map(|(r, _, _)| *r).collect();
        if !drop.is_empty() {
            tracing::warn!(shard = to, regions = ?drop, "dropping stale copies of regions from an interrupted handover");
        }
        let plan = ShardMsg::StartupPlan { store_id, directory: directory.clone(), drop };
        if to == 0 {
            startup.deliver(plan);
        } else {
            let _ = ctx.outbox.send(to, plan).await;
        }
    }
    Ok(store_id)
}

/// Creates the peers of the shard's live regions; drops stale copies.
fn start_peers(ctx: &ShardCtx, stored: Vec<(u64, StoredRegion)>, drop: &[u64]) -> Result<HashMap<u64, Peer>> {
    let mut peers = HashMap::new();
    for (region_id, s) in stored {
        let region = s.state.region.clone().unwrap_or_default();
        if drop.contains(&region_id) || s.state.state == PeerState::Applying as i32 {
            let mut wb = WriteBatch::default();
            delete_data_range(&mut wb, &region.start_key, &region.end_key);
            wb.delete(keys::region_state_key(region_id));
            wb.delete(keys::apply_state_key(region_id));
            ctx.engine.write_durable_blocking(wb)?;
            if let Ok(d) = ctx.log.remove(region_id) {
                drop_durable(d);
            }
            continue;
        }
        if s.state.state != PeerState::Normal as i32 {
            continue; // tombstone: stays in the directory only
        }
        let Some(me) = region.peers.iter().find(|p| p.store_id == ctx.store_id.get()).cloned() else {
            tracing::warn!(region_id, "stored region has no peer on this store; ignored");
            continue;
        };
        let apply = s.apply.clone().unwrap_or_else(crate::storage::PeerStorage::initial_apply_state);
        // A crash between a snapshot's data and its log reset leaves log entries at or below
        // the snapshot's index: drop them, or the next append would leave a gap.
        let truncated = apply.truncated_state.as_ref().map_or(0, |t| t.index);
        if ctx.log.entry_count(region_id) > 0 && ctx.log.first_index(region_id).is_some_and(|f| f <= truncated) {
            tracing::info!(region_id, truncated, "dropping raft log entries the applied state already covers");
            drop_durable(ctx.log.compact(region_id, truncated + 1)?);
        }
        ctx.report_range(region_id, Some(&region));
        let mut peer = Peer::new(ctx, region, me, apply)?;
        peer.handover_seq = s.state.handover_seq;
        ctx.count_region(1);
        peers.insert(region_id, peer);
    }
    // Logs with entries but no live region here: destroyed or handed-over peers whose log
    // removal the stop cut short. They would pin segments forever (and confuse a later peer
    // of the region). A log holding only a hard state is an uninitialized peer's vote: kept.
    for region_id in ctx.log.regions() {
        if !peers.contains_key(&region_id) && ctx.log.entry_count(region_id) > 0 {
            tracing::info!(region_id, "dropping the raft log of a region this shard no longer has");
            drop_durable(ctx.log.remove(region_id)?);
        }
    }
    Ok(peers)
}

fn drop_durable(d: core_shard::log::Durable) {
    drop(d);
}

/// Shard 0: registers the store with every shard's address, then reports ready.
async fn register_store(
    ctx: &ShardCtx,
    _startup: &StartupSink,
    addr: &str,
    ready: &flume::Sender<std::result::Result<(u64, Vec<String>), String>>,
) -> Result<()> {
    // Wait until every shard has published its address.
    let addrs = loop {
        let a = ctx.shared.shard_addrs.read().map(|a| a.clone()).unwrap_or_default();
        if a.iter().all(|s| !s.is_empty()) {
            break a;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    };
    let store = Store {
        id: ctx.store_id.get(),
        address: addr.to_string(),
        state: 0,
        shard_addresses: addrs.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        start_timestamp: pd::tso::now_ms(),
    };
    ctx.pd.put_store(store).await?;
    let _ = ready.send(Ok((ctx.store_id.get(), addrs)));
    Ok(())
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
