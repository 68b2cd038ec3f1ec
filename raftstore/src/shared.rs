//! What every shard of a store shares (and the process running the store sees): the store
//! id, per-shard region and leader counts, shard addresses, counters, and the transport filter
//! tests install. Atomics and locks read off the hot path only.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use net::proto::raft_serverpb::RaftMessage;

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
    /// Busy time of each shard's executor in nanoseconds (tasks and I/O polling, not the
    /// idle spin or sleep), refreshed every raft loop turn: divided by the operations served it
    /// is the server CPU per operation.
    pub busy_nanos: Vec<AtomicU64>,
    /// MVCC GC: the newest safe point a GC pass ran at.
    pub gc_safe_point: AtomicU64,
    /// MVCC GC: write records removed by this store's leaders' GC commands.
    pub gc_versions_removed: AtomicU64,
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
            busy_nanos: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            gc_safe_point: AtomicU64::new(0),
            gc_versions_removed: AtomicU64::new(0),
        })
    }

    /// Busy time of every shard together (as of each shard's last raft loop turn).
    pub fn busy(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.busy_nanos.iter().map(|b| b.load(Ordering::Relaxed)).sum())
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
