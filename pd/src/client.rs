//! The PD client: retries with backoff across reconnects, and batched TSO.
//!
//! **TSO batching.** Every `get_ts` call queues a reply channel. One dispatcher task per
//! client takes everything queued and asks PD for that many timestamps in one RPC; while the
//! RPC is in flight new calls queue up for the next one. PD returns the last timestamp of
//! the batch, so call `i` of `n` gets `last - (n - 1 - i)`: callers see timestamps in the
//! order they asked.
//!
//! **Retries.** A network error (connect refused, connection closed, timeout) drops the
//! connection and retries with exponential backoff (base 20 ms, cap 1 s) until the call's
//! deadline (default 10 s). PD's own errors (not bootstrapped, stale region, …) are returned
//! at once.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use core_shard::notify::Notify;
use core_shard::oneshot;
use net::proto::metapb::{Peer, Region, Store};
use net::proto::pdpb::*;
use net::{Client, ConnConfig, Method, NetError};
use prost::Message;

use crate::error::{PdError, Result};
use crate::server::WithHeader;
use crate::tso;

/// Client settings.
#[derive(Debug, Clone)]
pub struct PdClientConfig {
    /// PD addresses, tried in turn.
    pub endpoints: Vec<String>,
    /// Connection settings.
    pub conn: ConnConfig,
    /// Give up a call after this long. Default 10 s.
    pub deadline: Duration,
    /// First backoff. Default 20 ms.
    pub backoff_base: Duration,
    /// Largest backoff. Default 1 s.
    pub backoff_max: Duration,
}

impl PdClientConfig {
    /// Defaults for the given endpoints.
    pub fn new(endpoints: Vec<String>) -> Self {
        PdClientConfig {
            endpoints,
            conn: ConnConfig { call_timeout: Duration::from_secs(3), ..ConnConfig::default() },
            deadline: Duration::from_secs(10),
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// A region as PD routes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionRoute {
    /// The region.
    pub region: Region,
    /// Its leader, if known.
    pub leader: Option<Peer>,
    /// The leader's shard, if known.
    pub leader_shard: Option<u32>,
}

/// Counters of a client.
#[derive(Debug, Clone, Copy, Default)]
pub struct PdClientStats {
    /// TSO RPCs sent.
    pub tso_rpcs: u64,
    /// Timestamps handed out.
    pub timestamps: u64,
    /// Reconnects after errors.
    pub reconnects: u64,
}

struct Inner {
    config: PdClientConfig,
    conn: RefCell<Option<Client>>,
    next_endpoint: Cell<usize>,
    cluster_id: Cell<u64>,
    tso_queue: RefCell<Vec<oneshot::Sender<Result<u64>>>>,
    tso_wake: Notify,
    stats: Cell<PdClientStats>,
}

/// A PD client. Shard-local; cheap to clone.
#[derive(Clone)]
pub struct PdClient {
    inner: Rc<Inner>,
}

impl PdClient {
    /// A client for `config.endpoints`; connects lazily. Starts the TSO dispatcher on the
    /// current executor.
    pub fn new(config: PdClientConfig) -> Self {
        let inner = Rc::new(Inner {
            config,
            conn: RefCell::new(None),
            next_endpoint: Cell::new(0),
            cluster_id: Cell::new(0),
            tso_queue: RefCell::new(Vec::new()),
            tso_wake: Notify::new(),
            stats: Cell::new(PdClientStats::default()),
        });
        glommio::spawn_local(tso_dispatcher(Rc::downgrade(&inner))).detach();
        PdClient { inner }
    }

    /// The cluster id learned from PD (0 before the first response).
    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id.get()
    }

    /// Counters so far.
    pub fn stats(&self) -> PdClientStats {
        self.inner.stats.get()
    }

    fn header(&self) -> Option<RequestHeader> {
        Some(RequestHeader { cluster_id: self.inner.cluster_id.get() })
    }

    async fn connection(&self) -> std::result::Result<Client, NetError> {
        if let Some(c) = self.inner.conn.borrow().as_ref().filter(|c| c.closed().is_none()) {
            return Ok(c.clone());
        }
        let eps = &self.inner.config.endpoints;
        if eps.is_empty() {
            return Err(NetError::Connect { addr: String::new(), reason: "no PD endpoint configured".into() });
        }
        let i = self.inner.next_endpoint.get() % eps.len();
        self.inner.next_endpoint.set(i + 1);
        let c = Client::connect(&eps[i], self.inner.config.conn.clone()).await?;
        *self.inner.conn.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// Calls `method`, retrying network errors until the deadline; checks the header.
    pub async fn call<Req: Message, Resp: Message + WithHeader>(&self, method: Method, req: &Req) -> Result<Resp> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let mut backoff = cfg.backoff_base;
        loop {
            let result = match self.connection().await {
                Ok(c) => c.call_msg::<Req, Resp>(method, req, None).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(resp) => return self.check(resp),
                Err(e) if e.is_retryable() && start.elapsed() + backoff < cfg.deadline => {
                    tracing::debug!("PD call {method:?} failed, retrying in {backoff:?}: {e}");
                    if let Some(c) = self.inner.conn.borrow_mut().take() {
                        c.close();
                    }
                    let mut s = self.inner.stats.get();
                    s.reconnects += 1;
                    self.inner.stats.set(s);
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(cfg.backoff_max);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn check<Resp: WithHeader>(&self, resp: Resp) -> Result<Resp> {
        let h = resp.response_header().ok_or_else(|| PdError::Malformed("response without header".into()))?;
        if let Some(e) = &h.error {
            if e.r#type != ErrorType::Ok as i32 {
                return Err(PdError::Server {
                    kind: ErrorType::from_i32(e.r#type).unwrap_or(ErrorType::Unknown),
                    message: e.message.clone(),
                });
            }
        }
        let known = self.inner.cluster_id.get();
        if known == 0 {
            self.inner.cluster_id.set(h.cluster_id);
        } else if h.cluster_id != known {
            return Err(PdError::server(
                ErrorType::ClusterMismatch,
                format!("PD now serves cluster {}, this client talked to {known}", h.cluster_id),
            ));
        }
        Ok(resp)
    }

    /// Whether the cluster is bootstrapped.
    pub async fn is_bootstrapped(&self) -> Result<bool> {
        let r: IsBootstrappedResponse =
            self.call(Method::PdIsBootstrapped, &IsBootstrappedRequest { header: self.header() }).await?;
        Ok(r.bootstrapped)
    }

    /// Bootstraps the cluster with its first store and region.
    pub async fn bootstrap(&self, store: Store, region: Region) -> Result<()> {
        let req = BootstrapRequest { header: self.header(), store: Some(store), region: Some(region) };
        self.call::<_, BootstrapResponse>(Method::PdBootstrap, &req).await.map(|_| ())
    }

    /// Registers or updates a store.
    pub async fn put_store(&self, store: Store) -> Result<()> {
        let req = PutStoreRequest { header: self.header(), store: Some(store) };
        self.call::<_, PutStoreResponse>(Method::PdPutStore, &req).await.map(|_| ())
    }

    /// A store and its last statistics.
    pub async fn get_store(&self, store_id: u64) -> Result<(Store, Option<StoreStats>)> {
        let r: GetStoreResponse =
            self.call(Method::PdGetStore, &GetStoreRequest { header: self.header(), store_id }).await?;
        Ok((r.store.ok_or_else(|| PdError::Malformed("no store".into()))?, r.stats))
    }

    /// Every store with its statistics.
    pub async fn get_all_stores(&self) -> Result<Vec<(Store, StoreStats)>> {
        let req = GetAllStoresRequest { header: self.header(), exclude_tombstone_stores: false };
        let r: GetAllStoresResponse = self.call(Method::PdGetAllStores, &req).await?;
        let mut stats = r.stats.into_iter();
        Ok(r.stores.into_iter().map(|s| (s, stats.next().unwrap_or_default())).collect())
    }

    fn route(r: GetRegionResponse) -> Result<RegionRoute> {
        Ok(RegionRoute {
            region: r.region.ok_or_else(|| PdError::Malformed("no region".into()))?,
            leader: r.leader,
            leader_shard: r.has_leader_shard.then_some(r.leader_shard),
        })
    }

    /// The region containing `key`.
    pub async fn get_region(&self, key: &[u8]) -> Result<RegionRoute> {
        let req = GetRegionRequest { header: self.header(), region_key: key.to_vec().into() };
        Self::route(self.call(Method::PdGetRegion, &req).await?)
    }

    /// The region with id `id`.
    pub async fn get_region_by_id(&self, region_id: u64) -> Result<RegionRoute> {
        let req = GetRegionByIdRequest { header: self.header(), region_id };
        Self::route(self.call(Method::PdGetRegionById, &req).await?)
    }

    /// Regions from the one containing `start` up to `end`, at most `limit` (0 = all).
    pub async fn scan_regions(&self, start: &[u8], end: &[u8], limit: u32) -> Result<Vec<RegionRoute>> {
        let req = ScanRegionsRequest {
            header: self.header(),
            start_key: start.to_vec().into(),
            end_key: end.to_vec().into(),
            limit,
        };
        let r: ScanRegionsResponse = self.call(Method::PdScanRegions, &req).await?;
        r.regions
            .into_iter()
            .map(|i| {
                Ok(RegionRoute {
                    region: i.region.ok_or_else(|| PdError::Malformed("no region".into()))?,
                    leader: i.leader,
                    leader_shard: i.has_leader_shard.then_some(i.leader_shard),
                })
            })
            .collect()
    }

    /// A fresh id.
    pub async fn alloc_id(&self) -> Result<u64> {
        let r: AllocIdResponse = self.call(Method::PdAllocId, &AllocIdRequest { header: self.header() }).await?;
        Ok(r.id)
    }

    /// Ids for a split of `region`: the new region's and one peer id per peer.
    pub async fn ask_split(&self, region: Region) -> Result<(u64, Vec<u64>)> {
        let r: AskSplitResponse =
            self.call(Method::PdAskSplit, &AskSplitRequest { header: self.header(), region: Some(region) }).await?;
        Ok((r.new_region_id, r.new_peer_ids))
    }

    /// Reports a finished split.
    pub async fn report_split(&self, left: Region, right: Region) -> Result<()> {
        let req = ReportSplitRequest { header: self.header(), left: Some(left), right: Some(right) };
        self.call::<_, ReportSplitResponse>(Method::PdReportSplit, &req).await.map(|_| ())
    }

    /// Sends a store heartbeat; returns the operator steps for regions the store leads.
    pub async fn store_heartbeat(&self, stats: StoreStats) -> Result<Vec<OperatorStep>> {
        let req = StoreHeartbeatRequest { header: self.header(), stats: Some(stats) };
        self.call::<_, StoreHeartbeatResponse>(Method::PdStoreHeartbeat, &req).await.map(|r| r.steps)
    }

    /// Sends a region heartbeat (from the region's leader); returns the step its leader should
    /// take, if an operator runs on the region.
    pub async fn region_heartbeat(&self, mut req: RegionHeartbeatRequest) -> Result<Option<OperatorStep>> {
        req.header = self.header();
        self.call::<_, RegionHeartbeatResponse>(Method::PdRegionHeartbeat, &req).await.map(|r| r.step)
    }

    /// Operators (running, and recent finished ones if asked).
    pub async fn operators(&self, include_finished: bool) -> Result<Vec<OperatorInfo>> {
        let req = GetOperatorsRequest { header: self.header(), include_finished };
        self.call::<_, GetOperatorsResponse>(Method::PdGetOperators, &req).await.map(|r| r.operators)
    }

    /// Adds an operator by hand: `kind` is transfer-leader, add-peer, remove-peer or move-peer.
    pub async fn add_operator(
        &self,
        region_id: u64,
        kind: &str,
        store_id: u64,
        from_store_id: u64,
    ) -> Result<OperatorInfo> {
        let req =
            AddOperatorRequest { header: self.header(), region_id, kind: kind.to_string(), store_id, from_store_id };
        let r: AddOperatorResponse = self.call(Method::PdAddOperator, &req).await?;
        r.operator.ok_or_else(|| PdError::Malformed("no operator in the response".into()))
    }

    /// Cancels a region's operator.
    pub async fn cancel_operator(&self, region_id: u64) -> Result<()> {
        let req = CancelOperatorRequest { header: self.header(), region_id };
        self.call::<_, CancelOperatorResponse>(Method::PdCancelOperator, &req).await.map(|_| ())
    }

    /// The schedulers and whether each is paused.
    pub async fn schedulers(&self) -> Result<Vec<SchedulerInfo>> {
        let req = ListSchedulersRequest { header: self.header() };
        self.call::<_, ListSchedulersResponse>(Method::PdListSchedulers, &req).await.map(|r| r.schedulers)
    }

    /// Pauses (or resumes) a scheduler.
    pub async fn pause_scheduler(&self, name: &str, pause: bool) -> Result<()> {
        let req = PauseSchedulerRequest { header: self.header(), name: name.to_string(), pause };
        self.call::<_, PauseSchedulerResponse>(Method::PdPauseScheduler, &req).await.map(|_| ())
    }

    /// Reads the schedule configuration after applying `set` (empty: only read).
    pub async fn schedule_config(
        &self,
        set: Vec<(String, String)>,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let req = ScheduleConfigRequest { header: self.header(), set: set.into_iter().collect() };
        let r: ScheduleConfigResponse = self.call(Method::PdScheduleConfig, &req).await?;
        Ok(r.config.into_iter().collect())
    }

    /// Raises the MVCC GC safe point to `safe_point` (never lowers it); returns where it is.
    pub async fn update_gc_safe_point(&self, safe_point: u64) -> Result<u64> {
        let req = UpdateGcSafePointRequest { header: self.header(), safe_point };
        let r: UpdateGcSafePointResponse = self.call(Method::PdUpdateGcSafePoint, &req).await?;
        Ok(r.new_safe_point)
    }

    /// The MVCC GC safe point (0: never set).
    pub async fn get_gc_safe_point(&self) -> Result<u64> {
        let r: GetGcSafePointResponse =
            self.call(Method::PdGetGcSafePoint, &GetGcSafePointRequest { header: self.header() }).await?;
        Ok(r.safe_point)
    }

    /// Cluster summary.
    pub async fn cluster_info(&self) -> Result<GetClusterInfoResponse> {
        self.call(Method::PdGetClusterInfo, &GetClusterInfoRequest { header: self.header() }).await
    }

    /// `count` timestamps in one RPC, unbatched: returns the last.
    pub async fn get_ts_batch(&self, count: u32) -> Result<u64> {
        let r: TsoResponse = self.call(Method::PdTso, &TsoRequest { header: self.header(), count }).await?;
        let t = r.timestamp.ok_or_else(|| PdError::Malformed("TSO response without timestamp".into()))?;
        if r.count != count {
            return Err(PdError::Malformed(format!("asked {count} timestamps, got {}", r.count)));
        }
        Ok(tso::compose(t.physical as u64, t.logical as u64))
    }

    /// One timestamp; concurrent calls share RPCs.
    pub async fn get_ts(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.inner.tso_queue.borrow_mut().push(tx);
        self.inner.tso_wake.notify_all();
        rx.await.map_err(|_| PdError::Malformed("TSO dispatcher stopped".into()))?
    }
}

/// Sends the queued TSO requests as one RPC at a time.
async fn tso_dispatcher(weak: Weak<Inner>) {
    let mut batch = Vec::new();
    loop {
        let notified = match weak.upgrade() {
            Some(inner) => {
                std::mem::swap(&mut batch, &mut *inner.tso_queue.borrow_mut());
                if batch.is_empty() {
                    inner.tso_wake.notified()
                } else {
                    let limit = (tso::MAX_LOGICAL - 1) as usize;
                    if batch.len() > limit {
                        // Put the excess back for the next RPC.
                        let rest = batch.split_off(limit);
                        inner.tso_queue.borrow_mut().splice(0..0, rest);
                    }
                    let client = PdClient { inner };
                    let n = batch.len() as u32;
                    let result = client.get_ts_batch(n).await;
                    let mut s = client.inner.stats.get();
                    s.tso_rpcs += 1;
                    s.timestamps += n as u64;
                    client.inner.stats.set(s);
                    drop(client);
                    for (i, tx) in batch.drain(..).enumerate() {
                        tx.send(result.clone().map(|last| last - (n as u64 - 1 - i as u64)));
                    }
                    continue;
                }
            }
            None => return,
        };
        notified.await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the dispatcher see that the client is gone and stop.
        self.tso_wake.notify_all();
    }
}
