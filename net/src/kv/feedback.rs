//! What a response (or its absence) teaches the region cache, and whether to retry.
//!
//! Every attempt ends in one of: success (confirms a guessed leader, applies a shard hint),
//! a region error (fixes the cache per `docs/client.md` and says how to
//! retry), or a network failure (the peer is unreachable: the leader becomes unknown and the
//! next voter is tried). These functions only touch the cache, so they are tested without a
//! network; the client evicts connections and sleeps.
//!
//! | region error | cache | retry |
//! |---|---|---|
//! | `NotLeader{leader}` | set leader (and shard) | at once |
//! | `NotLeader{}` | leader unknown, probe next voter | backoff |
//! | `EpochNotMatch{regions}` | replace with the given regions, or drop | at once |
//! | `RegionNotFound` | drop (or, for a guessed peer, probe the next) | at once |
//! | `KeyNotInRegion` | drop | at once |
//! | `ServerIsBusy{backoff_ms}` | — | backoff ≥ `backoff_ms` |
//! | `StaleCommand` | — | backoff |
//! | `WrongShard{shard}` | set the leader's shard | at once |
//! | `RequestTimeout{stage}` | — | backoff (the store did not apply it) |
//! | `UndeterminedResult` | — | never: the client fails the write as undetermined |
//!
//! "At once" is bounded by the backoffer's immediate-retry streak.

use std::time::Duration;

use super::cache::RegionCache;
use super::error::describe_region_error;
use super::route::Route;
use super::stats::RetryCause;
use crate::error::NetError;
use crate::proto::errorpb::{region_error::Kind, EpochNotMatch, NotLeader, RegionError, WrongShard};
use crate::proto::metapb::{Peer, Region};

/// A failed attempt that may succeed if tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Why.
    pub cause: RetryCause,
    /// Whether the cache now holds the fix, so waiting is pointless.
    pub immediate: bool,
    /// Wait at least this long (what a busy server asked for).
    pub min_delay: Duration,
    /// What went wrong, for logs and the final error.
    pub reason: String,
}

impl Retry {
    /// Retry after the cause's backoff.
    pub fn after(cause: RetryCause, reason: impl Into<String>) -> Self {
        Retry { cause, immediate: false, min_delay: Duration::ZERO, reason: reason.into() }
    }

    /// Retry at once.
    pub fn now(cause: RetryCause, reason: impl Into<String>) -> Self {
        Retry { cause, immediate: true, min_delay: Duration::ZERO, reason: reason.into() }
    }
}

/// Where an attempt went.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The region.
    pub region_id: u64,
    /// The peer addressed.
    pub peer: Peer,
    /// Whether that peer was the cached leader (else a guess while the leader is unknown).
    pub to_leader: bool,
    /// The leader shard whose address was used, if any.
    pub shard: Option<u32>,
}

/// A route for `region` whose leader is its peer on `store_id` (if any): after a split or
/// an epoch change the leader usually stays on the same store.
pub fn route_on_store(region: Region, store_id: Option<u64>) -> Route {
    let leader = store_id.and_then(|s| region.peers.iter().find(|p| p.store_id == s).cloned());
    Route { region, leader, leader_shard: None }
}

/// Applies a successful response: a guessed peer proved to be the leader; a shard hint names
/// the leader's shard. Returns whether a hint was applied.
pub fn on_success(cache: &mut RegionCache, sent: &Sent, hint: Option<&WrongShard>) -> bool {
    let hint = hint.filter(|h| h.region_id == sent.region_id || h.region_id == 0).map(|h| h.shard);
    if !sent.to_leader {
        cache.update_leader(sent.region_id, sent.peer.clone(), hint.or(sent.shard));
    } else if let Some(shard) = hint {
        cache.set_leader_shard(sent.region_id, shard);
    }
    hint.is_some()
}

/// Applies a shard hint that came with a region error (only meaningful from the leader).
pub fn on_shard_hint(cache: &mut RegionCache, sent: &Sent, hint: &WrongShard) -> bool {
    sent.to_leader
        && (hint.region_id == sent.region_id || hint.region_id == 0)
        && cache.set_leader_shard(sent.region_id, hint.shard)
}

/// The peer could not be reached: probe the next voter, reloading after a full round.
pub fn on_network_error(cache: &mut RegionCache, sent: &Sent, e: &NetError) -> Retry {
    if cache.peer_failed(sent.region_id, sent.peer.id) {
        cache.invalidate(sent.region_id);
    }
    Retry::after(
        RetryCause::Network,
        format!("region {} peer {} on store {}: {e}", sent.region_id, sent.peer.id, sent.peer.store_id),
    )
}

/// Fixes the cache after a region error and says how to retry.
pub fn on_region_error(cache: &mut RegionCache, sent: &Sent, err: RegionError) -> Retry {
    let reason = format!("region {}: {}", sent.region_id, describe_region_error(&err));
    match err.kind {
        Some(Kind::NotLeader(n)) => not_leader(cache, sent, n, reason),
        Some(Kind::EpochNotMatch(m)) => epoch_not_match(cache, sent, m, reason),
        Some(Kind::RegionNotFound(_)) => region_not_found(cache, sent, reason),
        Some(Kind::KeyNotInRegion(_)) => drop_region(cache, sent, RetryCause::KeyNotInRegion, reason),
        Some(Kind::ServerIsBusy(b)) => {
            Retry { min_delay: Duration::from_millis(b.backoff_ms), ..Retry::after(RetryCause::ServerBusy, reason) }
        }
        Some(Kind::StaleCommand(_)) => Retry::after(RetryCause::StaleCommand, reason),
        Some(Kind::WrongShard(w)) => wrong_shard(cache, sent, w, reason),
        Some(Kind::RequestTimeout(_)) => Retry::after(RetryCause::Timeout, reason),
        // The client turns this into `KvError::Undetermined` before it gets here; should one
        // arrive anyway, it says nothing about the route.
        Some(Kind::UndeterminedResult(_)) | None => {
            cache.invalidate(sent.region_id);
            Retry::after(RetryCause::OtherRegionError, reason)
        }
    }
}

fn not_leader(cache: &mut RegionCache, sent: &Sent, n: NotLeader, reason: String) -> Retry {
    match n.leader.filter(|l| l.id != 0) {
        Some(leader) if leader.id != sent.peer.id => {
            let shard = n.has_leader_shard.then_some(n.leader_shard);
            cache.update_leader(sent.region_id, leader, shard);
            Retry::now(RetryCause::NotLeader, reason)
        }
        // No leader, or the peer names itself: try the next voter after a pause.
        _ => {
            if cache.peer_failed(sent.region_id, sent.peer.id) {
                cache.invalidate(sent.region_id);
            }
            Retry::after(RetryCause::NotLeader, reason)
        }
    }
}

fn epoch_not_match(cache: &mut RegionCache, sent: &Sent, m: EpochNotMatch, reason: String) -> Retry {
    cache.invalidate(sent.region_id);
    let leader_store = sent.to_leader.then_some(sent.peer.store_id);
    for region in m.current_regions {
        cache.insert(route_on_store(region, leader_store));
    }
    Retry::now(RetryCause::EpochNotMatch, reason)
}

fn region_not_found(cache: &mut RegionCache, sent: &Sent, reason: String) -> Retry {
    // A guessed peer's store may simply not have the region yet: try the next voter, and
    // reload only after all were tried.
    if !sent.to_leader && !cache.peer_failed(sent.region_id, sent.peer.id) {
        return Retry::now(RetryCause::RegionNotFound, reason);
    }
    drop_region(cache, sent, RetryCause::RegionNotFound, reason)
}

fn drop_region(cache: &mut RegionCache, sent: &Sent, cause: RetryCause, reason: String) -> Retry {
    cache.invalidate(sent.region_id);
    Retry::now(cause, reason)
}

fn wrong_shard(cache: &mut RegionCache, sent: &Sent, w: WrongShard, reason: String) -> Retry {
    if sent.to_leader && sent.shard == Some(w.shard) {
        // We addressed the shard it names: the store is confused or changing; wait.
        return Retry::after(RetryCause::WrongShard, reason);
    }
    if sent.to_leader {
        cache.set_leader_shard(sent.region_id, w.shard);
    } else {
        // Tentative: if this peer is not the leader, the next answer says so.
        cache.update_leader(sent.region_id, sent.peer.clone(), Some(w.shard));
    }
    Retry::now(RetryCause::WrongShard, reason)
}

#[cfg(test)]
#[path = "feedback_tests.rs"]
mod tests;
