//! Counters of a [`KvClient`](super::KvClient), for tests and metrics.

use super::backoff::BackoffKind;

/// Why a request was retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryCause {
    /// `NotLeader` from the store.
    NotLeader,
    /// `EpochNotMatch`: the region split, merged or changed peers.
    EpochNotMatch,
    /// `RegionNotFound`: the store has no peer of the region.
    RegionNotFound,
    /// `KeyNotInRegion`: the cached key range was stale.
    KeyNotInRegion,
    /// `ServerIsBusy`.
    ServerBusy,
    /// `StaleCommand`.
    StaleCommand,
    /// `WrongShard`: the store names the shard hosting the region.
    WrongShard,
    /// `RequestTimeout`: the store gave up on the request within its bound (not applied).
    Timeout,
    /// A region error of a kind this client does not know.
    OtherRegionError,
    /// Connecting or calling failed.
    Network,
    /// The route source (PD) failed or answered something unusable.
    RouteSource,
}

impl RetryCause {
    /// Every cause, in index order.
    pub const ALL: [RetryCause; 11] = [
        RetryCause::NotLeader,
        RetryCause::EpochNotMatch,
        RetryCause::RegionNotFound,
        RetryCause::KeyNotInRegion,
        RetryCause::ServerBusy,
        RetryCause::StaleCommand,
        RetryCause::WrongShard,
        RetryCause::Timeout,
        RetryCause::OtherRegionError,
        RetryCause::Network,
        RetryCause::RouteSource,
    ];

    /// The backoff schedule a retry of this cause follows.
    pub fn backoff_kind(self) -> BackoffKind {
        match self {
            RetryCause::NotLeader => BackoffKind::NotLeader,
            RetryCause::EpochNotMatch
            | RetryCause::RegionNotFound
            | RetryCause::KeyNotInRegion
            | RetryCause::WrongShard
            | RetryCause::OtherRegionError => BackoffKind::RegionMiss,
            RetryCause::ServerBusy | RetryCause::Timeout => BackoffKind::ServerBusy,
            RetryCause::StaleCommand => BackoffKind::StaleCommand,
            RetryCause::Network => BackoffKind::Network,
            RetryCause::RouteSource => BackoffKind::RouteSource,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a client has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Requests sent to stores (every attempt counts).
    pub requests: u64,
    /// Regions loaded from the route source (cache misses and reloads).
    pub route_loads: u64,
    /// Responses whose `shard_hint` said the request was forwarded inside the store.
    pub shard_hints: u64,
    /// Waits before a retry.
    pub backoffs: u64,
    /// Total time waited, in milliseconds.
    pub backoff_ms: u64,
    retries: [u64; RetryCause::ALL.len()],
}

impl KvStats {
    /// Retries caused by `cause` (failures the deadline allowed to retry).
    pub fn retries(&self, cause: RetryCause) -> u64 {
        self.retries[cause.index()]
    }

    /// Retries of every cause.
    pub fn total_retries(&self) -> u64 {
        self.retries.iter().sum()
    }

    pub(crate) fn count_retry(&mut self, cause: RetryCause) {
        self.retries[cause.index()] += 1;
    }
}
