//! Bounded exponential backoff per error kind, under one deadline per operation.
//!
//! Every operation owns a [`Backoffer`]. Each [`BackoffKind`] grows on its own, from its
//! base, doubling up to its cap, so a burst of leader changes does not make a later busy
//! store wait longer than it asks. Delays get "equal jitter" (a delay `d` becomes a random
//! value in `[d/2, d]`) so clients that failed together do not retry together.
//!
//! Some errors carry the fix (a `NotLeader` naming the leader, a `WrongShard`): those retry
//! at once. To keep a confused server from spinning a client, at most
//! [`MAX_IMMEDIATE_STREAK`] immediate retries happen in a row; the next one waits like any
//! other retry of its kind.
//!
//! The deadline is checked before every wait: a wait that would end past it is not started,
//! and [`KvError::DeadlineExceeded`] names the last error instead. The type is pure (time is
//! passed in), so it is tested without sleeping; the client does the sleeping.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::KvError;

/// Immediate retries allowed in a row before one waits anyway.
pub const MAX_IMMEDIATE_STREAK: u32 = 2;

/// Why a retry waits. Each kind has its own base and cap (see [`BackoffKind::base`] and
/// [`BackoffKind::cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackoffKind {
    /// The peer asked is not the leader and does not know who is: 10 ms → 500 ms.
    NotLeader,
    /// The cached region was wrong or missing (epoch, key range, shard): 10 ms → 500 ms.
    RegionMiss,
    /// The store asked to back off: 50 ms → 2 s (and at least what the store asked).
    ServerBusy,
    /// The command was proposed under a term that ended: 10 ms → 1 s.
    StaleCommand,
    /// Connecting or calling failed: 50 ms → 2 s.
    Network,
    /// The route source (PD) could not answer: 100 ms → 2 s.
    RouteSource,
}

impl BackoffKind {
    /// Every kind, in index order.
    pub const ALL: [BackoffKind; 6] = [
        BackoffKind::NotLeader,
        BackoffKind::RegionMiss,
        BackoffKind::ServerBusy,
        BackoffKind::StaleCommand,
        BackoffKind::Network,
        BackoffKind::RouteSource,
    ];

    /// The first delay.
    pub fn base(self) -> Duration {
        Duration::from_millis(match self {
            BackoffKind::NotLeader | BackoffKind::RegionMiss | BackoffKind::StaleCommand => 10,
            BackoffKind::ServerBusy | BackoffKind::Network => 50,
            BackoffKind::RouteSource => 100,
        })
    }

    /// The largest delay.
    pub fn cap(self) -> Duration {
        Duration::from_millis(match self {
            BackoffKind::NotLeader | BackoffKind::RegionMiss => 500,
            BackoffKind::StaleCommand => 1_000,
            BackoffKind::ServerBusy | BackoffKind::Network | BackoffKind::RouteSource => 2_000,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The retry state of one operation: attempts per kind, the immediate-retry streak, the
/// deadline and the last error.
#[derive(Debug, Clone)]
pub struct Backoffer {
    start: Instant,
    deadline: Duration,
    attempts: [u32; BackoffKind::ALL.len()],
    streak: u32,
    retries: u32,
    /// xorshift state; `None` = no jitter.
    rng: Option<u64>,
    last_error: String,
}

impl Backoffer {
    /// A backoffer whose deadline is `deadline` from now, with jitter.
    pub fn new(deadline: Duration) -> Self {
        Self::starting_at(Instant::now(), deadline)
    }

    /// A backoffer whose deadline is `deadline` after `start`, with jitter.
    pub fn starting_at(start: Instant, deadline: Duration) -> Self {
        let seed = next_seed();
        Backoffer {
            start,
            deadline,
            attempts: [0; BackoffKind::ALL.len()],
            streak: 0,
            retries: 0,
            rng: Some(seed | 1),
            last_error: String::new(),
        }
    }

    /// The same without jitter: delays are exactly `base * 2^n`, capped.
    pub fn without_jitter(mut self) -> Self {
        self.rng = None;
        self
    }

    /// Retries granted so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Waits of `kind` so far.
    pub fn attempts(&self, kind: BackoffKind) -> u32 {
        self.attempts[kind.index()]
    }

    /// The error that caused the last retry (empty before any).
    pub fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Time left before the deadline, at `now`.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_sub(now.saturating_duration_since(self.start))
    }

    /// The next wait of `kind` before jitter: `base * 2^attempts`, at most the cap.
    pub fn nominal_delay(&self, kind: BackoffKind) -> Duration {
        let shift = self.attempts[kind.index()].min(20);
        kind.base().saturating_mul(1 << shift).min(kind.cap())
    }

    /// Grants a retry after `reason`: returns how long to wait first (zero for an immediate
    /// retry), at least `min`, or the deadline error. `immediate` asks for no wait; it is
    /// granted [`MAX_IMMEDIATE_STREAK`] times in a row.
    pub fn next(
        &mut self,
        kind: BackoffKind,
        min: Duration,
        immediate: bool,
        reason: impl Into<String>,
        now: Instant,
    ) -> Result<Duration, KvError> {
        self.last_error = reason.into();
        let elapsed = now.saturating_duration_since(self.start);
        let delay = if immediate && self.streak < MAX_IMMEDIATE_STREAK && min.is_zero() {
            self.streak += 1;
            Duration::ZERO
        } else {
            self.streak = 0;
            let d = self.jitter(self.nominal_delay(kind)).max(min);
            self.attempts[kind.index()] += 1;
            d
        };
        if elapsed >= self.deadline || elapsed + delay > self.deadline {
            return Err(KvError::DeadlineExceeded {
                deadline: self.deadline,
                elapsed,
                retries: self.retries,
                last_error: self.last_error.clone(),
            });
        }
        self.retries += 1;
        Ok(delay)
    }

    /// A value in `[d/2, d]`, or `d` without jitter.
    fn jitter(&mut self, d: Duration) -> Duration {
        let Some(state) = self.rng.as_mut() else { return d };
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let nanos = d.as_nanos() as u64;
        let half = nanos / 2;
        Duration::from_nanos(half + *state % (nanos - half + 1))
    }
}

thread_local! {
    static SEED: Cell<u64> = Cell::new(
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    );
}

/// A distinct jitter seed per backoffer (splitmix64 over a per-thread counter), so that
/// operations failing together do not wait alike.
fn next_seed() -> u64 {
    let x = SEED.with(|s| {
        let v = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(v);
        v
    });
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(kind: BackoffKind, n: usize) -> Vec<u64> {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, Duration::from_secs(3600)).without_jitter();
        (0..n).map(|_| bo.next(kind, Duration::ZERO, false, "x", t0).unwrap().as_millis() as u64).collect()
    }

    #[test]
    fn grows_by_doubling_and_caps_per_kind() {
        let cases: [(BackoffKind, &[u64]); 6] = [
            (BackoffKind::NotLeader, &[10, 20, 40, 80, 160, 320, 500, 500]),
            (BackoffKind::RegionMiss, &[10, 20, 40, 80, 160, 320, 500, 500]),
            (BackoffKind::ServerBusy, &[50, 100, 200, 400, 800, 1600, 2000, 2000]),
            (BackoffKind::StaleCommand, &[10, 20, 40, 80, 160, 320, 640, 1000]),
            (BackoffKind::Network, &[50, 100, 200, 400, 800, 1600, 2000, 2000]),
            (BackoffKind::RouteSource, &[100, 200, 400, 800, 1600, 2000, 2000, 2000]),
        ];
        for (kind, want) in cases {
            assert_eq!(delays(kind, want.len()), want, "{kind:?}");
        }
    }

    #[test]
    fn kinds_grow_independently() {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, Duration::from_secs(60)).without_jitter();
        for _ in 0..5 {
            bo.next(BackoffKind::Network, Duration::ZERO, false, "net", t0).unwrap();
        }
        assert_eq!(bo.attempts(BackoffKind::Network), 5);
        assert_eq!(bo.next(BackoffKind::NotLeader, Duration::ZERO, false, "nl", t0).unwrap(), 10 * MS);
        assert_eq!(bo.nominal_delay(BackoffKind::Network), 1600 * MS);
    }

    #[test]
    fn a_minimum_overrides_the_schedule() {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, Duration::from_secs(60)).without_jitter();
        assert_eq!(bo.next(BackoffKind::ServerBusy, 700 * MS, false, "busy", t0).unwrap(), 700 * MS);
        // A minimum below the schedule does not shorten it; an immediate request with a
        // minimum still waits.
        assert_eq!(bo.next(BackoffKind::ServerBusy, 5 * MS, false, "busy", t0).unwrap(), 100 * MS);
        assert_eq!(bo.next(BackoffKind::ServerBusy, 300 * MS, true, "busy", t0).unwrap(), 300 * MS);
    }

    #[test]
    fn immediate_retries_are_bounded_in_a_row() {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, Duration::from_secs(60)).without_jitter();
        let got: Vec<Duration> =
            (0..7).map(|_| bo.next(BackoffKind::RegionMiss, Duration::ZERO, true, "epoch", t0).unwrap()).collect();
        let z = Duration::ZERO;
        assert_eq!(got, vec![z, z, 10 * MS, z, z, 20 * MS, z]);
        assert_eq!(bo.retries(), 7);
    }

    #[test]
    fn a_wait_past_the_deadline_fails_naming_the_last_error() {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, 100 * MS).without_jitter();
        let cases: [(u32, BackoffKind, bool, Option<u32>); 5] = [
            // (now, kind, immediate, expected wait or deadline error)
            (0, BackoffKind::Network, false, Some(50)),
            (50, BackoffKind::NotLeader, false, Some(10)),
            (60, BackoffKind::NotLeader, true, Some(0)),
            (60, BackoffKind::Network, false, None), // 60 + 100 > 100
            (100, BackoffKind::RegionMiss, true, None),
        ];
        for (i, (at, kind, immediate, want)) in cases.into_iter().enumerate() {
            let r = bo.next(kind, Duration::ZERO, immediate, format!("error {i}"), t0 + at * MS);
            match (r, want) {
                (Ok(d), Some(w)) => assert_eq!(d, w * MS, "case {i}"),
                (Err(KvError::DeadlineExceeded { last_error, deadline, retries, .. }), None) => {
                    assert_eq!(last_error, format!("error {i}"));
                    assert_eq!(deadline, 100 * MS);
                    assert_eq!(retries, 3);
                }
                (r, w) => panic!("case {i}: got {r:?}, want {w:?}"),
            }
        }
        assert_eq!(bo.remaining(t0 + 30 * MS), 70 * MS);
        assert_eq!(bo.remaining(t0 + 300 * MS), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let t0 = Instant::now();
        let mut bo = Backoffer::starting_at(t0, Duration::from_secs(3600));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let nominal = bo.nominal_delay(BackoffKind::Network);
            let d = bo.next(BackoffKind::Network, Duration::ZERO, false, "x", t0).unwrap();
            assert!(d >= nominal / 2 && d <= nominal, "{d:?} outside [{:?}, {nominal:?}]", nominal / 2);
            seen.insert(d);
        }
        assert!(seen.len() > 10, "jitter should vary the delays");
    }
}
