//! What every part of a shard shares: engines, PD client, transport, mailbox, the event
//! queue of its raft loop, and the store-wide state all shards see.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use core_shard::log::LogEngine;
use core_shard::mailbox::Outbox;
use core_shard::notify::Notify;
use core_shard::oneshot;
use core_shard::runtime::TaskQueues;
use net::proto::raft_serverpb::RaftMessage;
use pd::PdClient;

use super::msg::{Event, ShardMsg};
use crate::config::Config;
use crate::engine::KvEngine;
use crate::tracker::{RequestTracker, Stage, Ticket};
use crate::transport::Transport;

/// Decides whether a raft message may travel (tests: drop, partition, isolate).
pub trait TransportFilter: Send + Sync {
    /// Whether `msg` from `from_store` to `to_store` is delivered.
    fn allow(&self, from_store: u64, to_store: u64, msg: &RaftMessage) -> bool;
}

/// State shared by every shard of a store (and the process that runs it).
pub struct StoreShared {
    /// The store id (0 until known).
    pub store_id: AtomicU64,
    /// Regions per shard.
    pub region_counts: Vec<AtomicU32>,
    /// Leaders per shard.
    pub leader_counts: Vec<AtomicU32>,
    /// Client address of each shard.
    pub shard_addrs: RwLock<Vec<String>>,
    has_filter: AtomicBool,
    filter: RwLock<Option<Arc<dyn TransportFilter>>>,
    /// Set when the store is stopping.
    pub stopping: AtomicBool,
    /// Snapshots this store applied (received).
    pub snapshots_applied: AtomicU64,
    /// Snapshots this store generated (to send).
    pub snapshots_generated: AtomicU64,
    /// Stops moving regions between shards (a test hook; configuration disables it for good).
    pub shard_balance_paused: AtomicBool,
    /// Regions moved between shards by shard balance.
    pub shard_moves: AtomicU64,
    /// Requests logged as slow (pending past `request.slow-ms`), every shard together.
    pub slow_requests: AtomicU64,
    /// Requests answered by the bound (`request.timeout-ms`), every shard together.
    pub timed_out_requests: AtomicU64,
}

impl StoreShared {
    /// Shared state for `shards` shards.
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(StoreShared {
            store_id: AtomicU64::new(0),
            region_counts: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            leader_counts: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            shard_addrs: RwLock::new(vec![String::new(); shards]),
            has_filter: AtomicBool::new(false),
            filter: RwLock::new(None),
            stopping: AtomicBool::new(false),
            snapshots_applied: AtomicU64::new(0),
            snapshots_generated: AtomicU64::new(0),
            shard_balance_paused: AtomicBool::new(false),
            shard_moves: AtomicU64::new(0),
            slow_requests: AtomicU64::new(0),
            timed_out_requests: AtomicU64::new(0),
        })
    }

    /// Installs (or with `None` removes) a transport filter.
    pub fn set_filter(&self, f: Option<Arc<dyn TransportFilter>>) {
        let on = f.is_some();
        if let Ok(mut g) = self.filter.write() {
            *g = f;
        }
        self.has_filter.store(on, Ordering::SeqCst);
    }

    /// Whether a message may be sent (always, unless a test installed a filter).
    pub fn allow(&self, from: u64, to: u64, msg: &RaftMessage) -> bool {
        if !self.has_filter.load(Ordering::Relaxed) {
            return true;
        }
        match self.filter.read() {
            Ok(g) => g.as_ref().is_none_or(|f| f.allow(from, to, msg)),
            Err(_) => true,
        }
    }

    /// The least-loaded shard by region count (ties: the lowest id).
    pub fn least_loaded_shard(&self) -> usize {
        (0..self.region_counts.len()).min_by_key(|&i| (self.region_counts[i].load(Ordering::Relaxed), i)).unwrap_or(0)
    }
}

/// Vote requests the coordinator keeps for regions that splits will create.
pub const HELD_FOR_SPLIT: usize = 256;

/// A shard's context.
pub struct ShardCtx {
    /// This shard.
    pub shard_id: usize,
    /// Shards of the store.
    pub shards: usize,
    /// Store id.
    pub store_id: Cell<u64>,
    /// Configuration.
    pub cfg: Rc<Config>,
    /// State machine.
    pub engine: KvEngine,
    /// Raft log.
    pub log: LogEngine,
    /// PD.
    pub pd: PdClient,
    /// Other shards.
    pub outbox: Outbox<ShardMsg>,
    /// Task queues.
    pub queues: TaskQueues,
    /// Raft messages to other stores.
    pub transport: Rc<Transport>,
    /// Store-wide state.
    pub shared: Arc<StoreShared>,
    /// Region → shard, for every region of the store (tombstones included).
    pub dir: RefCell<HashMap<u64, usize>>,
    /// Coordinator only: key ranges of the store's initialized regions, `region → (start,
    /// end, version)`.
    pub ranges: RefCell<HashMap<u64, (bytes::Bytes, bytes::Bytes, u64)>>,
    /// Client requests in flight on this shard, their stages and the bound on their wait.
    pub requests: RefCell<RequestTracker>,
    /// Coordinator only: vote requests for regions a split this store has not applied yet
    /// will create, oldest first (at most [`HELD_FOR_SPLIT`]).
    held_for_split: RefCell<VecDeque<RaftMessage>>,
    events: RefCell<VecDeque<Event>>,
    wake: Notify,
    forwards: RefCell<HashMap<u64, oneshot::Sender<Result<bytes::Bytes, net::proto::rpcpb::Status>>>>,
    next_forward: Cell<u64>,
}

impl ShardCtx {
    /// A context; the raft loop starts separately.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shard_id: usize,
        shards: usize,
        cfg: Rc<Config>,
        engine: KvEngine,
        log: LogEngine,
        pd: PdClient,
        outbox: Outbox<ShardMsg>,
        queues: TaskQueues,
        transport: Rc<Transport>,
        shared: Arc<StoreShared>,
    ) -> Self {
        let slow_after = Duration::from_millis(cfg.request.slow_ms);
        ShardCtx {
            shard_id,
            shards,
            store_id: Cell::new(0),
            cfg,
            engine,
            log,
            pd,
            outbox,
            queues,
            transport,
            shared,
            dir: RefCell::new(HashMap::new()),
            ranges: RefCell::new(HashMap::new()),
            requests: RefCell::new(RequestTracker::new(slow_after)),
            held_for_split: RefCell::new(VecDeque::new()),
            events: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            forwards: RefCell::new(HashMap::new()),
            next_forward: Cell::new(1),
        }
    }

    /// Records the stage a tracked request reached (no-op without a ticket).
    pub fn set_stage(&self, ticket: Option<Ticket>, stage: Stage) {
        if let Some(t) = ticket {
            self.requests.borrow_mut().set_stage(t, stage);
        }
    }

    /// Queues an event for the raft loop.
    pub fn push(&self, ev: Event) {
        self.events.borrow_mut().push_back(ev);
        self.wake.notify_all();
    }

    /// Takes every queued event, waiting for one if there is none.
    pub async fn next_events(&self, out: &mut Vec<Event>) {
        loop {
            let notified = self.wake.notified();
            {
                let mut q = self.events.borrow_mut();
                if !q.is_empty() {
                    out.extend(q.drain(..));
                    return;
                }
            }
            notified.await;
        }
    }

    /// The shard hosting `region`, if the store has it.
    pub fn shard_of(&self, region_id: u64) -> Option<usize> {
        self.dir.borrow().get(&region_id).copied()
    }

    /// Records where a region lives, here and on every other shard.
    pub fn announce(&self, region_id: u64, shard: Option<usize>) {
        self.set_dir(region_id, shard);
        for to in 0..self.shards {
            if to != self.shard_id {
                let _ = self.outbox.try_send(to, ShardMsg::Directory { region_id, shard });
            }
        }
    }

    /// Tells the coordinator an initialized region's key range (`None`: it left the store).
    pub fn report_range(&self, region_id: u64, region: Option<&net::proto::metapb::Region>) {
        let range =
            region.map(|r| (r.start_key.clone(), r.end_key.clone(), r.region_epoch.as_ref().map_or(0, |e| e.version)));
        if self.shard_id == 0 {
            self.set_range(region_id, range);
        } else {
            let outbox = self.outbox.clone();
            let msg = ShardMsg::Range { region_id, range };
            if let Err(core_shard::mailbox::TrySendError::Full(msg)) = outbox.try_send(0, msg) {
                glommio::spawn_local(async move {
                    let _ = outbox.send(0, msg).await;
                })
                .detach();
            }
        }
    }

    /// Coordinator: records a range report.
    pub fn set_range(&self, region_id: u64, range: Option<(bytes::Bytes, bytes::Bytes, u64)>) {
        let mut r = self.ranges.borrow_mut();
        match range {
            Some(v) => r.insert(region_id, v),
            None => r.remove(&region_id),
        };
    }

    /// Coordinator: the initialized region other than `region_id` whose range overlaps
    /// `[start, end)`, if any.
    pub fn overlapping_region(&self, region_id: u64, start: &[u8], end: &[u8]) -> Option<u64> {
        self.ranges.borrow().iter().find_map(|(&id, (s, e, _))| {
            let overlap = (e.is_empty() || start < &e[..]) && (end.is_empty() || &s[..] < end);
            (id != region_id && overlap).then_some(id)
        })
    }

    /// Coordinator: keeps a vote request for a region a split will create here.
    pub fn hold_for_split(&self, m: RaftMessage) {
        let mut held = self.held_for_split.borrow_mut();
        if held.len() >= HELD_FOR_SPLIT {
            held.pop_front();
        }
        held.push_back(m);
    }

    /// Coordinator: the held messages of `region_id` (its split was applied here).
    pub fn take_held_for_split(&self, region_id: u64) -> Vec<RaftMessage> {
        let mut held = self.held_for_split.borrow_mut();
        let (theirs, rest): (Vec<_>, Vec<_>) = held.drain(..).partition(|m| m.region_id == region_id);
        held.extend(rest);
        theirs
    }

    /// Updates the local directory only.
    pub fn set_dir(&self, region_id: u64, shard: Option<usize>) {
        let mut d = self.dir.borrow_mut();
        match shard {
            Some(s) => d.insert(region_id, s),
            None => d.remove(&region_id),
        };
    }

    /// Registers a forwarded request; returns its id and the receiver of its reply.
    pub fn start_forward(&self) -> (u64, oneshot::Receiver<Result<bytes::Bytes, net::proto::rpcpb::Status>>) {
        let id = self.next_forward.get();
        self.next_forward.set(id + 1);
        let (tx, rx) = oneshot::channel();
        self.forwards.borrow_mut().insert(id, tx);
        (id, rx)
    }

    /// Completes a forwarded request.
    pub fn finish_forward(&self, id: u64, result: Result<bytes::Bytes, net::proto::rpcpb::Status>) {
        if let Some(tx) = self.forwards.borrow_mut().remove(&id) {
            tx.send(result);
        }
    }

    /// Forgets a forwarded request whose caller gave up (a late reply is dropped).
    pub fn cancel_forward(&self, id: u64) {
        self.forwards.borrow_mut().remove(&id);
    }

    /// Abandons every forwarded request (the store is stopping: the other shard may never
    /// answer); their callers get an `Unavailable` error.
    pub fn drop_forwards(&self) {
        self.forwards.borrow_mut().clear();
    }

    /// Starts the asynchronous entry reads raft asked `peer` for.
    pub fn push_fetches(self: &Rc<Self>, peer: &crate::peer::Peer) {
        let region_id = peer.region_id();
        for f in peer.raw_node.store().take_fetches() {
            let ctx = self.clone();
            glommio::spawn_local(async move {
                // Reading caches the entries; raft's retry then finds them in memory.
                if let Err(e) = ctx.log.entries(region_id, f.low, f.high, f.max_size).await {
                    tracing::debug!(region_id, "entry fetch failed: {e}");
                }
                ctx.push(Event::EntriesFetched { region_id, ctx: f.ctx });
            })
            .detach();
        }
    }

    /// Adjusts this shard's region count.
    pub fn count_region(&self, delta: i32) {
        let c = &self.shared.region_counts[self.shard_id];
        if delta >= 0 {
            c.fetch_add(delta as u32, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as u32, Ordering::Relaxed);
        }
    }

    /// Adjusts this shard's leader count.
    pub fn count_leader(&self, delta: i32) {
        let c = &self.shared.leader_counts[self.shard_id];
        if delta >= 0 {
            c.fetch_add(delta as u32, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as u32, Ordering::Relaxed);
        }
    }
}
