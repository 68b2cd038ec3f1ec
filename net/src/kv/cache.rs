//! The client's region and store caches.
//!
//! [`RegionCache`] maps start key → region, with what is known of the leader (peer and the
//! shard of its store). Regions in the cache never overlap: inserting a region drops every
//! cached region it overlaps, so a split or merge learned from a store or from PD replaces
//! the stale view at once. Nothing here is authoritative — a wrong entry costs one region
//! error and a retry, never a wrong answer, because every request carries the region epoch.
//!
//! When the leader is unknown the client tries the region's voters in turn; the entry keeps
//! the probe position so that consecutive failures walk around the peers, and reports a full
//! round so the caller can reload the region instead of circling forever.
//!
//! [`StoreCache`] maps store id → store (address, per-shard addresses).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::rc::Rc;

use bytes::Bytes;

use super::route::Route;
use crate::proto::metapb::{Peer, PeerRole, Region, Store};

/// Whether `key` is in `[start, end)`, empty `end` = +∞.
pub fn contains(region: &Region, key: &[u8]) -> bool {
    key >= &region.start_key[..] && (region.end_key.is_empty() || key < &region.end_key[..])
}

/// Whether two regions' ranges overlap.
pub fn overlaps(a: &Region, b: &Region) -> bool {
    (b.end_key.is_empty() || a.start_key < b.end_key) && (a.end_key.is_empty() || b.start_key < a.end_key)
}

/// A cached region and its leader.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CachedRegion {
    /// The region as last learned.
    pub region: Region,
    /// The leader, if known.
    pub leader: Option<Peer>,
    /// The shard of the leader's store hosting the region, if known.
    pub leader_shard: Option<u32>,
    /// Next voter to try while the leader is unknown.
    probe: usize,
    /// Voters tried since the leader became unknown.
    probed: usize,
}

impl CachedRegion {
    /// An entry for `route`.
    pub fn new(route: Route) -> Self {
        let leader_shard = route.leader.as_ref().and(route.leader_shard);
        CachedRegion { region: route.region, leader: route.leader, leader_shard, probe: 0, probed: 0 }
    }

    /// The peer to send to and whether it is the known leader: the leader, or else the next
    /// voter in turn (any peer if there are no voters). `None` if the region has no peers.
    pub fn target(&self) -> Option<(Peer, bool)> {
        if let Some(l) = &self.leader {
            return Some((l.clone(), true));
        }
        let candidates = self.candidates();
        candidates.get(self.probe % candidates.len().max(1)).map(|p| ((*p).clone(), false))
    }

    fn candidates(&self) -> Vec<&Peer> {
        let voters: Vec<&Peer> = self.region.peers.iter().filter(|p| p.role == PeerRole::Voter as i32).collect();
        if voters.is_empty() {
            self.region.peers.iter().collect()
        } else {
            voters
        }
    }

    /// The peer of this region on `store_id`.
    pub fn peer_on_store(&self, store_id: u64) -> Option<&Peer> {
        self.region.peers.iter().find(|p| p.store_id == store_id)
    }
}

/// Start key → region, without overlaps; region id → start key.
#[derive(Debug, Default)]
pub struct RegionCache {
    by_start: BTreeMap<Bytes, Rc<CachedRegion>>,
    ids: HashMap<u64, Bytes>,
}

impl RegionCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Regions cached.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// The cached region containing `key`.
    pub fn by_key(&self, key: &[u8]) -> Option<&Rc<CachedRegion>> {
        let (_, r) = self.by_start.range::<[u8], _>((Unbounded, Included(key))).next_back()?;
        contains(&r.region, key).then_some(r)
    }

    /// The cached region holding the keys just below `end` (empty `end` = +∞): the one with
    /// `start < end <= region end`. Used to walk regions downwards.
    pub fn before(&self, end: &[u8]) -> Option<&Rc<CachedRegion>> {
        if end.is_empty() {
            let (_, r) = self.by_start.iter().next_back()?;
            return r.region.end_key.is_empty().then_some(r);
        }
        let (_, r) = self.by_start.range::<[u8], _>((Unbounded, Excluded(end))).next_back()?;
        (r.region.end_key.is_empty() || end <= &r.region.end_key[..]).then_some(r)
    }

    /// The cached region with id `id`.
    pub fn by_id(&self, id: u64) -> Option<&Rc<CachedRegion>> {
        self.by_start.get(self.ids.get(&id)?)
    }

    /// Every cached region, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &CachedRegion> {
        self.by_start.values().map(|r| &**r)
    }

    /// Caches `route`, dropping every cached region it overlaps (and any older entry with
    /// its id). If the route names no leader but the cache knew one for the same region that
    /// is still a peer, that leader (and its shard) is kept. Returns the entry.
    pub fn insert(&mut self, route: Route) -> Rc<CachedRegion> {
        let mut entry = CachedRegion::new(route);
        let mut dropped = Vec::new();
        if let Some(old) = self.ids.get(&entry.region.id).cloned() {
            dropped.extend(self.remove_start(&old));
        }
        for start in self.overlapping(&entry.region) {
            dropped.extend(self.remove_start(&start));
        }
        if entry.leader.is_none() {
            let kept = dropped.into_iter().find(|d| d.region.id == entry.region.id);
            if let Some(old) = kept {
                let still_peer = |l: &Peer| entry.region.peers.iter().any(|p| p.id == l.id);
                if old.leader.as_ref().is_some_and(still_peer) {
                    entry.leader = old.leader.clone();
                    entry.leader_shard = old.leader_shard;
                }
            }
        }
        let entry = Rc::new(entry);
        self.ids.insert(entry.region.id, entry.region.start_key.clone());
        self.by_start.insert(entry.region.start_key.clone(), entry.clone());
        entry
    }

    /// Start keys of cached regions overlapping `region`.
    fn overlapping(&self, region: &Region) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(r) = self.by_key(&region.start_key) {
            out.push(r.region.start_key.clone());
        }
        for (start, r) in self.by_start.range::<[u8], _>((Included(&region.start_key[..]), Unbounded)) {
            if !region.end_key.is_empty() && start[..] >= region.end_key[..] {
                break;
            }
            if overlaps(&r.region, region) && !out.contains(start) {
                out.push(start.clone());
            }
        }
        out
    }

    fn remove_start(&mut self, start: &Bytes) -> Option<Rc<CachedRegion>> {
        let r = self.by_start.remove(start)?;
        self.ids.remove(&r.region.id);
        Some(r)
    }

    /// Drops region `id`; returns what was cached.
    pub fn invalidate(&mut self, id: u64) -> Option<Rc<CachedRegion>> {
        let start = self.ids.get(&id)?.clone();
        self.remove_start(&start)
    }

    /// The entry of region `id`, to change (copied first if a request still holds it).
    fn entry_mut(&mut self, id: u64) -> Option<&mut CachedRegion> {
        let start = self.ids.get(&id)?;
        self.by_start.get_mut(start).map(Rc::make_mut)
    }

    /// Sets region `id`'s leader (and its shard, `None` = unknown). False if not cached.
    pub fn update_leader(&mut self, id: u64, leader: Peer, shard: Option<u32>) -> bool {
        let Some(e) = self.entry_mut(id) else { return false };
        e.leader = Some(leader);
        e.leader_shard = shard;
        e.probed = 0;
        true
    }

    /// Sets the shard of region `id`'s known leader. False if not cached or no leader.
    pub fn set_leader_shard(&mut self, id: u64, shard: u32) -> bool {
        match self.entry_mut(id) {
            Some(e) if e.leader.is_some() => {
                e.leader_shard = Some(shard);
                true
            }
            _ => false,
        }
    }

    /// Records that `peer_id` of region `id` could not serve (unreachable, or not the leader
    /// and no better idea): the leader becomes unknown and the next probe goes to the voter
    /// after it. Returns true once every voter was tried since the leader was last known —
    /// time to reload the region. False if the region is not cached.
    pub fn peer_failed(&mut self, id: u64, peer_id: u64) -> bool {
        let Some(e) = self.entry_mut(id) else { return false };
        e.leader = None;
        e.leader_shard = None;
        let candidates = e.candidates();
        let n = candidates.len();
        let next = candidates.iter().position(|p| p.id == peer_id).map_or(e.probe + 1, |i| i + 1);
        e.probe = next % n.max(1);
        e.probed += 1;
        if e.probed >= n {
            e.probed = 0;
            return true;
        }
        false
    }
}

/// Store id → store.
#[derive(Debug, Default)]
pub struct StoreCache {
    stores: HashMap<u64, Rc<Store>>,
}

impl StoreCache {
    /// The cached store `id`.
    pub fn get(&self, id: u64) -> Option<&Rc<Store>> {
        self.stores.get(&id)
    }

    /// Caches `store`.
    pub fn insert(&mut self, store: Rc<Store>) {
        self.stores.insert(store.id, store);
    }

    /// Drops store `id` (its address may have changed).
    pub fn invalidate(&mut self, id: u64) {
        self.stores.remove(&id);
    }
}

/// The address to reach `store` at for a region on `shard` (`None` = unknown): the shard's
/// own address when listed, else the store's main address. `None` if the store has neither.
pub fn store_address(store: &Store, shard: Option<u32>) -> Option<&str> {
    let by_shard = shard.and_then(|s| store.shard_addresses.get(s as usize)).filter(|a| !a.is_empty());
    by_shard.or(Some(&store.address).filter(|a| !a.is_empty())).map(|a| a.as_str())
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
