//! The PD server: cluster state, the PD service, and its run loop.
//!
//! PD runs on one shard (one executor): its state is `Rc<RefCell<_>>`, TSO and ID
//! allocation are serialized for free, and storage writes go to the blocking pool.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use net::proto::metapb::{Store, StoreState};
use net::proto::pdpb::*;
use net::server::{typed, HandlerResult, LocalBoxFuture, Service};
use net::Method;

use crate::cluster::{Cluster, StoreInfo};
use crate::error::{PdError, Result};
use crate::gc::GcSafePoint;
use crate::id_alloc::IdAllocator;
use crate::region_tree::{RegionInfo, Update};
use crate::schedule::coordinator::Scheduling;
use crate::storage::{region_key, store_key, Storage, Write, BOOTSTRAPPED, CLUSTER_ID};
use crate::tso::{self, Tso};

/// The placement driver.
pub struct Pd {
    cluster_id: u64,
    pub(crate) storage: Storage,
    pub(crate) ids: IdAllocator,
    tso: Tso,
    pub(crate) cluster: RefCell<Cluster>,
    bootstrapping: Cell<bool>,
    pub(crate) sched: Scheduling,
    gc: GcSafePoint,
}

/// Runs `Result`-returning handler bodies and turns errors into a response header.
macro_rules! respond {
    ($pd:expr, $resp:ty, $body:expr) => {{
        let r: Result<$resp> = $body;
        match r {
            Ok(mut resp) => {
                resp.header = Some($pd.header(None));
                resp
            }
            Err(e) => <$resp>::default_with_header($pd.header(Some(e))),
        }
    }};
}

/// Responses that carry a header.
pub trait WithHeader: Default {
    /// An otherwise empty response with `header`.
    fn default_with_header(header: ResponseHeader) -> Self;
    /// The header, if set.
    fn response_header(&self) -> Option<&ResponseHeader>;
}

macro_rules! with_header {
    ($($t:ty),*) => {$(
        #[allow(clippy::needless_update)] // some responses have no field besides the header
        impl WithHeader for $t {
            fn default_with_header(header: ResponseHeader) -> Self {
                Self { header: Some(header), ..Default::default() }
            }
            fn response_header(&self) -> Option<&ResponseHeader> {
                self.header.as_ref()
            }
        }
    )*};
}

with_header!(
    IsBootstrappedResponse,
    BootstrapResponse,
    PutStoreResponse,
    GetStoreResponse,
    GetAllStoresResponse,
    GetRegionResponse,
    ScanRegionsResponse,
    AllocIdResponse,
    TsoResponse,
    AskSplitResponse,
    ReportSplitResponse,
    StoreHeartbeatResponse,
    RegionHeartbeatResponse,
    GetClusterInfoResponse,
    GetOperatorsResponse,
    AddOperatorResponse,
    CancelOperatorResponse,
    ListSchedulersResponse,
    PauseSchedulerResponse,
    ScheduleConfigResponse,
    UpdateGcSafePointResponse,
    GetGcSafePointResponse
);

fn region_info_msg(i: &RegionInfo) -> net::proto::pdpb::RegionInfo {
    net::proto::pdpb::RegionInfo {
        region: Some(i.region.clone()),
        leader: i.leader.clone(),
        leader_shard: i.leader_shard.unwrap_or(0),
        has_leader_shard: i.leader_shard.is_some(),
    }
}

impl Pd {
    /// Opens PD's storage in `dir` and restores its state (blocking; call at start-up).
    pub fn open(dir: &Path) -> Result<Rc<Pd>> {
        std::fs::create_dir_all(dir).map_err(|e| PdError::Storage(format!("create {}: {e}", dir.display())))?;
        let storage = Storage::open(dir)?;
        let loaded = storage.load()?;
        let cluster_id = match loaded.cluster_id {
            Some(id) => id,
            None => {
                // Time in the high bits, randomness in the low: distinct across clusters.
                let id = (tso::now_ms() << 20) | (rand::random::<u64>() & 0xfffff);
                storage.write_blocking(Write::synced().put_u64(CLUSTER_ID, id))?;
                id
            }
        };
        let mut cluster = Cluster { bootstrapped: loaded.bootstrapped, ..Default::default() };
        for store in loaded.stores {
            cluster.stores.insert(store.id, StoreInfo { store, stats: None });
        }
        for region in loaded.regions {
            if let Err(e) = cluster.regions.update(RegionInfo { region, ..Default::default() }) {
                tracing::warn!("ignoring stored region: {e}");
            }
        }
        let tso = Tso::start(storage.clone(), loaded.tso)?;
        let sched = Scheduling::load(&storage)?;
        let ids = IdAllocator::new(storage.clone(), loaded.alloc_id);
        let gc = GcSafePoint::load(&storage)?;
        tracing::info!(
            cluster_id,
            stores = cluster.stores.len(),
            regions = cluster.regions.len(),
            id_high_water = loaded.alloc_id,
            tso_high_water = loaded.tso,
            "PD state loaded"
        );
        Ok(Rc::new(Pd {
            cluster_id,
            storage,
            ids,
            tso,
            cluster: RefCell::new(cluster),
            bootstrapping: Cell::new(false),
            sched,
            gc,
        }))
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Runs the TSO update loop until the returned task is dropped.
    pub fn start_tso_updater(self: &Rc<Self>) -> glommio::Task<()> {
        let pd = self.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(tso::UPDATE_INTERVAL).await;
                if let Err(e) = pd.tso.tick().await {
                    tracing::error!("TSO window could not be saved: {e}");
                }
            }
        })
    }

    pub(crate) fn header(&self, err: Option<PdError>) -> ResponseHeader {
        let error = err.map(|e| match e {
            PdError::Server { kind, message } => Error { r#type: kind as i32, message },
            other => Error { r#type: ErrorType::Unknown as i32, message: other.to_string() },
        });
        ResponseHeader { cluster_id: self.cluster_id, error }
    }

    pub(crate) fn check_header(&self, h: &Option<RequestHeader>) -> Result<()> {
        match h {
            Some(h) if h.cluster_id != 0 && h.cluster_id != self.cluster_id => Err(PdError::server(
                ErrorType::ClusterMismatch,
                format!("request for cluster {}, this is cluster {}", h.cluster_id, self.cluster_id),
            )),
            _ => Ok(()),
        }
    }

    fn require_bootstrapped(&self) -> Result<()> {
        if self.cluster.borrow().bootstrapped {
            Ok(())
        } else {
            Err(PdError::server(ErrorType::NotBootstrapped, "the cluster is not bootstrapped"))
        }
    }

    async fn bootstrap(&self, req: BootstrapRequest) -> Result<BootstrapResponse> {
        self.check_header(&req.header)?;
        let store = req.store.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no store"))?;
        let region = req.region.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no region"))?;
        validate_store(&store)?;
        if region.id == 0 || !region.peers.iter().any(|p| p.store_id == store.id) {
            return Err(PdError::server(ErrorType::InvalidArgument, "the first region must have a peer on the store"));
        }
        if self.cluster.borrow().bootstrapped || self.bootstrapping.get() {
            return Err(PdError::server(ErrorType::AlreadyBootstrapped, "the cluster is already bootstrapped"));
        }
        self.bootstrapping.set(true);
        let w = Write::synced()
            .put_msg(store_key(store.id), &store)
            .put_msg(region_key(region.id), &region)
            .put(BOOTSTRAPPED.to_vec(), b"1".to_vec());
        let res = self.storage.write(w).await;
        self.bootstrapping.set(false);
        res?;
        let mut c = self.cluster.borrow_mut();
        c.bootstrapped = true;
        c.stores.insert(store.id, StoreInfo { store, stats: None });
        let _ = c.regions.update(RegionInfo { region, ..Default::default() });
        tracing::info!("cluster bootstrapped");
        Ok(BootstrapResponse::default())
    }

    async fn put_store(&self, req: PutStoreRequest) -> Result<PutStoreResponse> {
        self.check_header(&req.header)?;
        self.require_bootstrapped()?;
        let store = req.store.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no store"))?;
        validate_store(&store)?;
        {
            let c = self.cluster.borrow();
            if let Some(known) = c.stores.get(&store.id) {
                if known.store.state == StoreState::Tombstone as i32 {
                    return Err(PdError::server(
                        ErrorType::StoreTombstone,
                        format!("store {} is a tombstone", store.id),
                    ));
                }
            }
            for s in c.stores.values() {
                if s.store.id != store.id
                    && s.store.address == store.address
                    && s.store.state != StoreState::Tombstone as i32
                {
                    return Err(PdError::server(
                        ErrorType::InvalidArgument,
                        format!("address {} is already used by store {}", store.address, s.store.id),
                    ));
                }
            }
        }
        self.storage.write(Write::synced().put_msg(store_key(store.id), &store)).await?;
        let mut c = self.cluster.borrow_mut();
        let stats = c.stores.get(&store.id).and_then(|s| s.stats.clone());
        c.stores.insert(store.id, StoreInfo { store, stats });
        Ok(PutStoreResponse::default())
    }

    fn get_store(&self, req: GetStoreRequest) -> Result<GetStoreResponse> {
        self.check_header(&req.header)?;
        let c = self.cluster.borrow();
        let s = c
            .stores
            .get(&req.store_id)
            .ok_or_else(|| PdError::server(ErrorType::StoreNotFound, format!("no store {}", req.store_id)))?;
        Ok(GetStoreResponse { header: None, store: Some(s.store.clone()), stats: s.stats.clone() })
    }

    fn get_all_stores(&self, req: GetAllStoresRequest) -> Result<GetAllStoresResponse> {
        self.check_header(&req.header)?;
        let c = self.cluster.borrow();
        let keep = |s: &&StoreInfo| !(req.exclude_tombstone_stores && s.store.state == StoreState::Tombstone as i32);
        let stores: Vec<&StoreInfo> = c.stores.values().filter(keep).collect();
        Ok(GetAllStoresResponse {
            header: None,
            stores: stores.iter().map(|s| s.store.clone()).collect(),
            stats: stores.iter().map(|s| s.stats.clone().unwrap_or_default()).collect(),
        })
    }

    fn region_response(info: Option<&RegionInfo>) -> Result<GetRegionResponse> {
        let i = info.ok_or_else(|| PdError::server(ErrorType::RegionNotFound, "no such region"))?;
        Ok(GetRegionResponse {
            header: None,
            region: Some(i.region.clone()),
            leader: i.leader.clone(),
            leader_shard: i.leader_shard.unwrap_or(0),
            has_leader_shard: i.leader_shard.is_some(),
        })
    }

    fn get_region(&self, req: GetRegionRequest) -> Result<GetRegionResponse> {
        self.check_header(&req.header)?;
        Self::region_response(self.cluster.borrow().regions.get_by_key(&req.region_key))
    }

    fn get_region_by_id(&self, req: GetRegionByIdRequest) -> Result<GetRegionResponse> {
        self.check_header(&req.header)?;
        Self::region_response(self.cluster.borrow().regions.get(req.region_id))
    }

    fn scan_regions(&self, req: ScanRegionsRequest) -> Result<ScanRegionsResponse> {
        self.check_header(&req.header)?;
        let c = self.cluster.borrow();
        let regions = c.regions.scan(&req.start_key, &req.end_key, req.limit as usize);
        Ok(ScanRegionsResponse { header: None, regions: regions.into_iter().map(region_info_msg).collect() })
    }

    async fn alloc_id(&self, req: AllocIdRequest) -> Result<AllocIdResponse> {
        self.check_header(&req.header)?;
        Ok(AllocIdResponse { header: None, id: self.ids.alloc().await? })
    }

    async fn tso(&self, req: TsoRequest) -> Result<TsoResponse> {
        self.check_header(&req.header)?;
        let last = self.tso.get(req.count).await?;
        let (physical, logical) = tso::split(last);
        Ok(TsoResponse {
            header: None,
            count: req.count,
            timestamp: Some(Timestamp { physical: physical as i64, logical: logical as i64 }),
        })
    }

    async fn ask_split(&self, req: AskSplitRequest) -> Result<AskSplitResponse> {
        self.check_header(&req.header)?;
        self.require_bootstrapped()?;
        let region = req.region.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no region"))?;
        if let Err(stale) = self.cluster.borrow().regions.check(&region) {
            return Err(PdError::server(ErrorType::StaleRegion, stale.to_string()));
        }
        let new_region_id = self.ids.alloc().await?;
        let mut new_peer_ids = Vec::with_capacity(region.peers.len());
        for _ in &region.peers {
            new_peer_ids.push(self.ids.alloc().await?);
        }
        Ok(AskSplitResponse { header: None, new_region_id, new_peer_ids })
    }

    async fn report_split(&self, req: ReportSplitRequest) -> Result<ReportSplitResponse> {
        self.check_header(&req.header)?;
        let left = req.left.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no left region"))?;
        let right = req.right.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no right region"))?;
        for r in [left, right] {
            self.record_region(RegionInfo { region: r, ..Default::default() }, true).await?;
        }
        Ok(ReportSplitResponse::default())
    }

    /// Records a region; persists it when its metadata changed.
    async fn record_region(&self, mut info: RegionInfo, keep_leader: bool) -> Result<()> {
        let write = {
            let mut c = self.cluster.borrow_mut();
            if keep_leader {
                if let Some(known) = c.regions.get(info.region.id) {
                    info.leader = known.leader.clone();
                    info.leader_shard = known.leader_shard;
                }
            }
            let region = info.region.clone();
            match c.regions.update(info) {
                Err(stale) => return Err(PdError::server(ErrorType::StaleRegion, stale.to_string())),
                Ok(Update::Unchanged) => None,
                Ok(Update::Changed { removed }) => {
                    let mut w = Write::unsynced().put_msg(region_key(region.id), &region);
                    for id in removed {
                        w = w.delete(region_key(id));
                    }
                    Some(w)
                }
            }
        };
        if let Some(w) = write {
            self.storage.write(w).await?;
        }
        Ok(())
    }

    fn store_heartbeat(&self, req: StoreHeartbeatRequest) -> Result<StoreHeartbeatResponse> {
        self.check_header(&req.header)?;
        let mut stats = req.stats.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no stats"))?;
        let mut c = self.cluster.borrow_mut();
        let s = c
            .stores
            .get_mut(&stats.store_id)
            .ok_or_else(|| PdError::server(ErrorType::StoreNotFound, format!("no store {}", stats.store_id)))?;
        stats.last_heartbeat_ms = tso::now_ms();
        let store_id = stats.store_id;
        s.stats = Some(stats);
        drop(c);
        Ok(StoreHeartbeatResponse { header: None, steps: self.sched.steps_for_store(&self.cluster.borrow(), store_id) })
    }

    async fn region_heartbeat(&self, req: RegionHeartbeatRequest) -> Result<RegionHeartbeatResponse> {
        self.check_header(&req.header)?;
        self.require_bootstrapped()?;
        let region = req.region.ok_or_else(|| PdError::server(ErrorType::InvalidArgument, "no region"))?;
        if region.id == 0 {
            return Err(PdError::server(ErrorType::InvalidArgument, "region id 0"));
        }
        let info = RegionInfo {
            leader_shard: req.leader.as_ref().map(|_| req.leader_shard),
            leader: req.leader,
            region,
            approximate_size: req.approximate_size,
            approximate_keys: req.approximate_keys,
            last_heartbeat_ms: tso::now_ms(),
            pending_peers: req.pending_peers,
            down_peers: req.down_peers,
        };
        let region_id = info.region.id;
        self.record_region(info, false).await?;
        Ok(RegionHeartbeatResponse {
            header: None,
            step: self.sched.step_for_region(&self.cluster.borrow(), region_id),
        })
    }

    fn cluster_info(&self, req: GetClusterInfoRequest) -> Result<GetClusterInfoResponse> {
        self.check_header(&req.header)?;
        let c = self.cluster.borrow();
        Ok(GetClusterInfoResponse {
            header: None,
            bootstrapped: c.bootstrapped,
            store_count: c.stores.len() as u32,
            region_count: c.regions.len() as u32,
            id_high_water: self.ids.high_water(),
            tso_high_water_ms: self.tso.high_water() as i64,
        })
    }
}

/// Scheduling: the scheduler task, and the RPCs (header checked here, the rest in
/// [`Scheduling`]).
impl Pd {
    /// Runs the schedulers every `schedule-interval` until the task is dropped.
    pub fn start_scheduler(self: &Rc<Self>) -> glommio::Task<()> {
        let pd = self.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(pd.sched.interval()).await;
                if let Err(e) = pd.schedule_once().await {
                    tracing::warn!("scheduling: {e}");
                }
            }
        })
    }

    /// One scheduling round.
    pub async fn schedule_once(&self) -> Result<()> {
        self.sched.schedule_once(&self.cluster, &self.ids).await
    }

    /// Operators created since PD started.
    pub fn operators_created(&self) -> u64 {
        self.sched.operators_created()
    }

    fn get_operators(&self, req: GetOperatorsRequest) -> Result<GetOperatorsResponse> {
        self.check_header(&req.header)?;
        Ok(self.sched.get_operators(req))
    }

    async fn add_operator(&self, req: AddOperatorRequest) -> Result<AddOperatorResponse> {
        self.check_header(&req.header)?;
        self.sched.add_operator(&self.cluster, &self.ids, req).await
    }

    fn cancel_operator(&self, req: CancelOperatorRequest) -> Result<CancelOperatorResponse> {
        self.check_header(&req.header)?;
        self.sched.cancel_operator(req)
    }

    fn list_schedulers(&self, req: ListSchedulersRequest) -> Result<ListSchedulersResponse> {
        self.check_header(&req.header)?;
        Ok(self.sched.list_schedulers(req))
    }

    async fn pause_scheduler(&self, req: PauseSchedulerRequest) -> Result<PauseSchedulerResponse> {
        self.check_header(&req.header)?;
        self.sched.pause_scheduler(&self.storage, req).await
    }

    async fn schedule_config(&self, req: ScheduleConfigRequest) -> Result<ScheduleConfigResponse> {
        self.check_header(&req.header)?;
        self.sched.schedule_config(&self.storage, req).await
    }

    async fn update_gc_safe_point(&self, req: UpdateGcSafePointRequest) -> Result<UpdateGcSafePointResponse> {
        self.check_header(&req.header)?;
        let new_safe_point = self.gc.update(&self.storage, req.safe_point).await?;
        Ok(UpdateGcSafePointResponse { header: None, new_safe_point })
    }

    fn get_gc_safe_point(&self, req: GetGcSafePointRequest) -> Result<GetGcSafePointResponse> {
        self.check_header(&req.header)?;
        Ok(GetGcSafePointResponse { header: None, safe_point: self.gc.get() })
    }
}

fn validate_store(store: &Store) -> Result<()> {
    if store.id == 0 {
        return Err(PdError::server(ErrorType::InvalidArgument, "store id 0"));
    }
    if store.address.is_empty() {
        return Err(PdError::server(ErrorType::InvalidArgument, "store without address"));
    }
    Ok(())
}

/// PD as a network service.
pub struct PdService(pub Rc<Pd>);

impl Service for PdService {
    fn call(&self, method: Method, payload: Bytes) -> LocalBoxFuture<HandlerResult> {
        let pd = self.0.clone();
        Box::pin(async move {
            let p = &pd;
            match method {
                Method::PdIsBootstrapped => {
                    typed(payload, |r: IsBootstrappedRequest| async move {
                        respond!(p, IsBootstrappedResponse, {
                            p.check_header(&r.header).map(|_| IsBootstrappedResponse {
                                header: None,
                                bootstrapped: p.cluster.borrow().bootstrapped,
                            })
                        })
                    })
                    .await
                }
                Method::PdBootstrap => {
                    typed(payload, |r| async move { respond!(p, BootstrapResponse, p.bootstrap(r).await) }).await
                }
                Method::PdPutStore => {
                    typed(payload, |r| async move { respond!(p, PutStoreResponse, p.put_store(r).await) }).await
                }
                Method::PdGetStore => {
                    typed(payload, |r| async move { respond!(p, GetStoreResponse, p.get_store(r)) }).await
                }
                Method::PdGetAllStores => {
                    typed(payload, |r| async move { respond!(p, GetAllStoresResponse, p.get_all_stores(r)) }).await
                }
                Method::PdGetRegion => {
                    typed(payload, |r| async move { respond!(p, GetRegionResponse, p.get_region(r)) }).await
                }
                Method::PdGetRegionById => {
                    typed(payload, |r| async move { respond!(p, GetRegionResponse, p.get_region_by_id(r)) }).await
                }
                Method::PdScanRegions => {
                    typed(payload, |r| async move { respond!(p, ScanRegionsResponse, p.scan_regions(r)) }).await
                }
                Method::PdAllocId => {
                    typed(payload, |r| async move { respond!(p, AllocIdResponse, p.alloc_id(r).await) }).await
                }
                Method::PdTso => typed(payload, |r| async move { respond!(p, TsoResponse, p.tso(r).await) }).await,
                Method::PdAskSplit => {
                    typed(payload, |r| async move { respond!(p, AskSplitResponse, p.ask_split(r).await) }).await
                }
                Method::PdReportSplit => {
                    typed(payload, |r| async move { respond!(p, ReportSplitResponse, p.report_split(r).await) }).await
                }
                Method::PdStoreHeartbeat => {
                    typed(payload, |r| async move { respond!(p, StoreHeartbeatResponse, p.store_heartbeat(r)) }).await
                }
                Method::PdRegionHeartbeat => {
                    typed(payload, |r| async move { respond!(p, RegionHeartbeatResponse, p.region_heartbeat(r).await) })
                        .await
                }
                Method::PdGetClusterInfo => {
                    typed(payload, |r| async move { respond!(p, GetClusterInfoResponse, p.cluster_info(r)) }).await
                }
                Method::PdGetOperators => {
                    typed(payload, |r| async move { respond!(p, GetOperatorsResponse, p.get_operators(r)) }).await
                }
                Method::PdAddOperator => {
                    typed(payload, |r| async move { respond!(p, AddOperatorResponse, p.add_operator(r).await) }).await
                }
                Method::PdCancelOperator => {
                    typed(payload, |r| async move { respond!(p, CancelOperatorResponse, p.cancel_operator(r)) }).await
                }
                Method::PdListSchedulers => {
                    typed(payload, |r| async move { respond!(p, ListSchedulersResponse, p.list_schedulers(r)) }).await
                }
                Method::PdPauseScheduler => {
                    typed(payload, |r| async move { respond!(p, PauseSchedulerResponse, p.pause_scheduler(r).await) })
                        .await
                }
                Method::PdScheduleConfig => {
                    typed(payload, |r| async move { respond!(p, ScheduleConfigResponse, p.schedule_config(r).await) })
                        .await
                }
                Method::PdUpdateGcSafePoint => {
                    typed(payload, |r| async move {
                        respond!(p, UpdateGcSafePointResponse, p.update_gc_safe_point(r).await)
                    })
                    .await
                }
                Method::PdGetGcSafePoint => {
                    typed(payload, |r| async move { respond!(p, GetGcSafePointResponse, p.get_gc_safe_point(r)) }).await
                }
                other => Err(net::server::status(
                    net::proto::rpcpb::StatusCode::Unimplemented,
                    format!("PD does not serve {other:?}"),
                )),
            }
        })
    }
}

/// Serves PD on `listener` (with the TSO updater) until `stop` completes; the task ends once
/// every connection is closed and PD's state is released.
pub fn spawn_server(
    pd: Rc<Pd>,
    listener: glommio::net::TcpListener,
    config: net::ConnConfig,
    stop: impl std::future::Future<Output = ()> + 'static,
) -> glommio::Task<()> {
    let updater = pd.start_tso_updater();
    let scheduler = pd.start_scheduler();
    let stats = Rc::new(net::server::ServerStats::default());
    glommio::spawn_local(async move {
        net::server::serve_until(listener, Rc::new(PdService(pd)), config, stats, stop).await;
        drop(updater);
        drop(scheduler);
    })
}
