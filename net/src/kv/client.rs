//! [`KvClient`]: shard-local state (caches, connections, counters), how an attempt ends
//! ([`Outcome`]) and the wait before a retry. The retry loop itself is in `retry`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::backoff::Backoffer;
use super::cache::{CachedRegion, RegionCache, StoreCache};
use super::error::{KvError, Result};
use super::feedback::Retry;
use super::route::RouteSource;
use super::stats::KvStats;
use crate::client::ClientPool;
use crate::conn::ConnConfig;

/// Client settings.
#[derive(Debug, Clone)]
pub struct KvConfig {
    /// Give up an operation, retries included, after this long. Default 20 s.
    pub deadline: Duration,
    /// Connection settings. `call_timeout` bounds one attempt (never past the deadline);
    /// default 10 s.
    pub conn: ConnConfig,
    /// Most pairs asked of one region per scan request; longer scans page. Default 1024,
    /// at least 1.
    pub scan_batch: u32,
    /// Regions loaded per route-source call when walking a key range. Default 64.
    pub region_batch: u32,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig { deadline: Duration::from_secs(20), conn: ConnConfig::default(), scan_batch: 1024, region_batch: 64 }
    }
}

pub(crate) struct Inner {
    pub(crate) source: Rc<dyn RouteSource>,
    pub(crate) config: KvConfig,
    pub(crate) pool: ClientPool,
    pub(crate) regions: RefCell<RegionCache>,
    pub(crate) stores: RefCell<StoreCache>,
    stats: Cell<KvStats>,
}

/// The routing KV client: caches regions and stores, sends every request to the region
/// leader's shard, retries region and network errors with backoff. Shard-local; cheap to
/// clone (clones share caches and connections).
#[derive(Clone)]
pub struct KvClient {
    pub(crate) inner: Rc<Inner>,
}

/// How an attempt ended.
pub(crate) enum Outcome<T> {
    /// The store answered.
    Done(T),
    /// Try again (after fixing the route and maybe waiting).
    Retry(Retry),
    /// Give up.
    Fail(KvError),
}

impl KvClient {
    /// A client asking `source` for routes. Connects lazily.
    pub fn new(source: Rc<dyn RouteSource>, config: KvConfig) -> Self {
        let pool = ClientPool::new(config.conn.clone());
        let config = KvConfig { scan_batch: config.scan_batch.max(1), ..config };
        KvClient {
            inner: Rc::new(Inner {
                source,
                config,
                pool,
                regions: RefCell::new(RegionCache::new()),
                stores: RefCell::new(StoreCache::default()),
                stats: Cell::new(KvStats::default()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &KvConfig {
        &self.inner.config
    }

    /// Counters so far.
    pub fn stats(&self) -> KvStats {
        self.inner.stats.get()
    }

    /// The cached region containing `key`, if any.
    pub fn cached_region(&self, key: &[u8]) -> Option<CachedRegion> {
        self.inner.regions.borrow().by_key(key).map(|r| (**r).clone())
    }

    /// The cached region with id `region_id`, if any.
    pub fn cached_region_by_id(&self, region_id: u64) -> Option<CachedRegion> {
        self.inner.regions.borrow().by_id(region_id).map(|r| (**r).clone())
    }

    /// Forgets region `region_id`; the next request for it asks the route source.
    pub fn invalidate_region(&self, region_id: u64) {
        self.inner.regions.borrow_mut().invalidate(region_id);
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut KvStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        self.inner.stats.set(s);
    }

    pub(crate) fn backoffer(&self) -> Backoffer {
        Backoffer::new(self.inner.config.deadline)
    }

    /// One attempt's timeout: the call timeout, but not past the deadline.
    pub(crate) fn call_timeout(&self, bo: &Backoffer) -> Duration {
        self.inner.config.conn.call_timeout.min(bo.remaining(Instant::now())).max(Duration::from_millis(1))
    }

    /// Waits once for all of `retries` (and counts them): each distinct backoff kind advances
    /// once, the longest wait wins. Fails when the deadline would pass.
    pub(crate) async fn wait(&self, bo: &mut Backoffer, retries: Vec<Retry>) -> Result<()> {
        let mut delay = Duration::ZERO;
        let mut kinds = Vec::new();
        for r in retries {
            tracing::debug!(cause = ?r.cause, reason = %r.reason, "kv request failed");
            let kind = r.cause.backoff_kind();
            if kinds.contains(&kind) {
                delay = delay.max(r.min_delay);
            } else {
                kinds.push(kind);
                delay = delay.max(bo.next(kind, r.min_delay, r.immediate, r.reason, Instant::now())?);
            }
            self.bump(|s| s.count_retry(r.cause));
        }
        if !delay.is_zero() {
            self.bump(|s| {
                s.backoffs += 1;
                s.backoff_ms += delay.as_millis() as u64;
            });
            glommio::timer::sleep(delay).await;
        }
        Ok(())
    }
}
