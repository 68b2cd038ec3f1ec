//! Client requests in flight on a shard: where each one waits, for how long, and the bound
//! on its wait.
//!
//! Every KV or admin request the service takes is admitted here with its region and kind
//! and gets a [`Ticket`]. The shard's raft loop records the [`Stage`] the request reaches —
//! queued in the shard's event queue, proposed (then persisted and committed, which the sweep
//! reads off the peer), waiting for a read index, waiting for apply, or a RocksDB read
//! deferred to the blocking pool. The service's wait for the answer is bounded by
//! `request.timeout-ms`: the shard's clock marks requests past it as expired every raft tick
//! and wakes their waits (no timer per request), and the service answers them with an explicit
//! timeout (or, for a write already proposed, an undetermined result), so no request waits for
//! the client's call timeout. Once per raft tick the raft loop sweeps the table: a request
//! pending longer than `request.slow-ms` is logged once, with its region, kind and stage, and
//! counted.
//!
//! The table is a slab: admitting and finishing a request is a vector access (no allocation
//! once the slab has grown to the shard's peak of requests in flight).

use std::fmt;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use net::Method;

/// Where a request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// In the shard's event queue: the raft loop has not seen it yet.
    Queued,
    /// Proposed at this log index, not yet durable in this peer's log.
    Proposed {
        /// The entry's index.
        index: u64,
    },
    /// Durable in the leader's log, not yet committed by a quorum.
    Persisted {
        /// The entry's index.
        index: u64,
    },
    /// Committed, not yet applied.
    Committed {
        /// The entry's index.
        index: u64,
    },
    /// A read waiting for raft's read index (a quorum confirming the leader).
    ReadIndex,
    /// A read whose read index is known, waiting for apply to reach it.
    Apply {
        /// The read index.
        index: u64,
    },
    /// A RocksDB read running on the blocking pool (the data was not in memory).
    Deferred,
    /// An admin command under way (asking PD, transferring leadership).
    Admin,
}

impl Stage {
    /// Whether a write in this stage may still be applied (it reached the raft log).
    pub fn proposed(self) -> bool {
        self.entry_index().is_some()
    }

    /// The log index of a proposed write's entry.
    pub fn entry_index(self) -> Option<u64> {
        match self {
            Stage::Proposed { index } | Stage::Persisted { index } | Stage::Committed { index } => Some(index),
            _ => None,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Queued => f.write_str("queued"),
            Stage::Proposed { index } => write!(f, "proposed (index {index})"),
            Stage::Persisted { index } => write!(f, "persisted (index {index})"),
            Stage::Committed { index } => write!(f, "committed (index {index})"),
            Stage::ReadIndex => f.write_str("waiting read index"),
            Stage::Apply { index } => write!(f, "waiting apply (index {index})"),
            Stage::Deferred => f.write_str("deferred read"),
            Stage::Admin => f.write_str("admin command"),
        }
    }
}

/// A request's place in the tracker. Stale tickets (of finished requests) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    slot: u32,
    generation: u32,
}

/// What the tracker knows of one request.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// Its region.
    pub region_id: u64,
    /// Its kind.
    pub method: Method,
    /// Where it waits.
    pub stage: Stage,
    /// When it was admitted.
    pub since: Instant,
    logged: bool,
    expired: bool,
    waker: Option<Waker>,
}

struct Slot {
    generation: u32,
    request: Option<Tracked>,
}

/// Counters of a shard's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Requests admitted.
    pub admitted: u64,
    /// Requests logged as slow.
    pub slow: u64,
    /// Requests answered with a timeout or an undetermined result by the bound.
    pub timed_out: u64,
}

/// The requests in flight on one shard.
pub struct RequestTracker {
    slots: Vec<Slot>,
    free: Vec<u32>,
    slow_after: Duration,
    stats: TrackerStats,
}

impl RequestTracker {
    /// A tracker that calls a request slow after `slow_after`.
    pub fn new(slow_after: Duration) -> Self {
        RequestTracker { slots: Vec::new(), free: Vec::new(), slow_after, stats: TrackerStats::default() }
    }

    /// Admits a request (stage [`Stage::Queued`]).
    pub fn admit(&mut self, region_id: u64, method: Method, now: Instant) -> Ticket {
        self.stats.admitted += 1;
        let request = Some(Tracked {
            region_id,
            method,
            stage: Stage::Queued,
            since: now,
            logged: false,
            expired: false,
            waker: None,
        });
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, request: None });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.request = request;
        Ticket { slot, generation: s.generation }
    }

    fn get_mut(&mut self, t: Ticket) -> Option<&mut Tracked> {
        self.slots.get_mut(t.slot as usize).filter(|s| s.generation == t.generation)?.request.as_mut()
    }

    /// Records that the request reached `stage`.
    pub fn set_stage(&mut self, t: Ticket, stage: Stage) {
        if let Some(r) = self.get_mut(t) {
            r.stage = stage;
        }
    }

    /// The request's stage, if it is still tracked.
    pub fn stage(&self, t: Ticket) -> Option<Stage> {
        let s = self.slots.get(t.slot as usize).filter(|s| s.generation == t.generation)?;
        s.request.as_ref().map(|r| r.stage)
    }

    /// The request is answered (or abandoned): forget it; returns what was known of it.
    pub fn finish(&mut self, t: Ticket) -> Option<Tracked> {
        let s = self.slots.get_mut(t.slot as usize).filter(|s| s.generation == t.generation)?;
        let r = s.request.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(t.slot);
        Some(r)
    }

    /// Marks the requests admitted longer than `bound` ago as expired and wakes their waits
    /// (the shard's clock calls this every tick). Returns how many it expired.
    pub fn expire_due(&mut self, now: Instant, bound: Duration) -> usize {
        let mut n = 0;
        for s in &mut self.slots {
            let Some(r) = s.request.as_mut().filter(|r| !r.expired) else { continue };
            if now.saturating_duration_since(r.since) >= bound {
                r.expired = true;
                n += 1;
                if let Some(w) = r.waker.take() {
                    w.wake();
                }
            }
        }
        n
    }

    /// `Ready` once the request expired; otherwise remembers `cx`'s waker.
    pub fn poll_expired(&mut self, t: Ticket, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut(t) {
            Some(r) if r.expired => Poll::Ready(()),
            Some(r) => {
                if !r.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    r.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            // Finished: nothing will expire it.
            None => Poll::Pending,
        }
    }

    /// Counts a request the bound answered.
    pub fn count_timeout(&mut self) {
        self.stats.timed_out += 1;
    }

    /// Brings the stage of the requests pending longer than the slow threshold up to date
    /// with `refine` (the peer knows whether a proposed entry is persisted or committed by
    /// now), and logs each of them once. Returns how many it logged.
    pub fn sweep(&mut self, now: Instant, refine: impl Fn(u64, Stage) -> Stage) -> usize {
        let mut logged = 0;
        for s in &mut self.slots {
            let Some(r) = s.request.as_mut() else { continue };
            let waited = now.saturating_duration_since(r.since);
            if waited < self.slow_after {
                continue;
            }
            r.stage = refine(r.region_id, r.stage);
            if r.logged {
                continue;
            }
            r.logged = true;
            logged += 1;
            let stage = r.stage;
            tracing::warn!(
                region_id = r.region_id,
                kind = ?r.method,
                stage = %stage,
                waited_ms = waited.as_millis() as u64,
                "slow request"
            );
        }
        self.stats.slow += logged as u64;
        logged
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_of_finished_requests_are_stale() {
        let mut t = RequestTracker::new(Duration::from_secs(1));
        let now = Instant::now();
        let a = t.admit(7, Method::RawGet, now);
        assert_eq!(t.stage(a), Some(Stage::Queued));
        t.set_stage(a, Stage::ReadIndex);
        assert_eq!(t.finish(a).map(|r| (r.region_id, r.stage)), Some((7, Stage::ReadIndex)));
        // The slot is reused; the old ticket no longer reaches it.
        let b = t.admit(8, Method::RawPut, now);
        assert_ne!(a, b);
        t.set_stage(a, Stage::Deferred);
        assert_eq!(t.stage(b), Some(Stage::Queued));
        assert!(t.finish(a).is_none());
        assert_eq!(t.in_flight(), 1);
        assert!(t.finish(b).is_some());
        assert_eq!((t.in_flight(), t.stats().admitted), (0, 2));
    }

    #[test]
    fn slow_requests_are_logged_once_with_their_refined_stage() {
        let mut t = RequestTracker::new(Duration::from_millis(100));
        let start = Instant::now();
        let old = t.admit(1, Method::RawPut, start);
        t.set_stage(old, Stage::Proposed { index: 9 });
        let young = t.admit(2, Method::RawGet, start + Duration::from_millis(150));
        let later = start + Duration::from_millis(200);
        let seen = std::cell::RefCell::new(Vec::new());
        let refine = |region, stage| {
            seen.borrow_mut().push((region, stage));
            match stage {
                Stage::Proposed { index } => Stage::Persisted { index },
                Stage::Persisted { index } => Stage::Committed { index },
                other => other,
            }
        };
        assert_eq!(t.sweep(later, refine), 1);
        assert_eq!(*seen.borrow(), vec![(1, Stage::Proposed { index: 9 })]);
        assert_eq!(t.stage(old), Some(Stage::Persisted { index: 9 }), "the refined stage is kept");
        assert_eq!(t.sweep(later + Duration::from_millis(100), refine), 1, "the young one, now slow");
        assert_eq!(t.stage(old), Some(Stage::Committed { index: 9 }), "and kept up to date");
        assert_eq!(t.sweep(later + Duration::from_secs(5), refine), 0, "each is logged once");
        assert_eq!(t.stats().slow, 2);
        assert!(t.finish(young).is_some() && t.finish(old).is_some());
    }

    #[test]
    fn expiry_wakes_the_wait_of_requests_past_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut t = RequestTracker::new(Duration::from_secs(1));
        let start = Instant::now();
        let old = t.admit(1, Method::RawGet, start);
        let young = t.admit(2, Method::RawGet, start + Duration::from_millis(500));
        assert!(t.poll_expired(old, &mut cx).is_pending());
        assert!(t.poll_expired(young, &mut cx).is_pending());
        assert_eq!(t.expire_due(start + Duration::from_millis(1200), Duration::from_secs(1)), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the expired request's wait was woken");
        assert!(t.poll_expired(old, &mut cx).is_ready());
        assert!(t.poll_expired(young, &mut cx).is_pending());
        assert_eq!(t.expire_due(start + Duration::from_millis(1300), Duration::from_secs(1)), 0, "once");
        t.finish(old);
        assert!(t.poll_expired(old, &mut cx).is_pending(), "a finished request never expires");
    }

    #[test]
    fn only_writes_in_the_log_count_as_proposed() {
        for s in [Stage::Proposed { index: 1 }, Stage::Persisted { index: 1 }, Stage::Committed { index: 1 }] {
            assert!(s.proposed() && s.entry_index() == Some(1), "{s}");
        }
        for s in [Stage::Queued, Stage::ReadIndex, Stage::Apply { index: 1 }, Stage::Deferred, Stage::Admin] {
            assert!(!s.proposed(), "{s}");
        }
    }
}
