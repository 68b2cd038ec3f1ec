//! Regions by key range and by id, with the rules that keep stale information out.
//!
//! A region heartbeat (or a split report) is **stale** when the region is known with a newer
//! epoch — a higher `version` (splits) or `conf_ver` (membership) — or when it overlaps
//! another region whose version is at least its own. A fresher region replaces every older
//! region it overlaps (they were split or merged away).

use std::collections::{BTreeMap, HashMap};

use net::proto::metapb::{Peer, Region, RegionEpoch};

/// What PD knows of a region beyond its metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionInfo {
    /// The region.
    pub region: Region,
    /// Its leader, if a heartbeat reported one.
    pub leader: Option<Peer>,
    /// The shard of the leader's store that hosts it.
    pub leader_shard: Option<u32>,
    /// Approximate size in bytes.
    pub approximate_size: u64,
    /// Approximate number of keys.
    pub approximate_keys: u64,
    /// Unix ms of the last heartbeat.
    pub last_heartbeat_ms: u64,
    /// Peers the leader reports as lagging (catching up or receiving a snapshot).
    pub pending_peers: Vec<Peer>,
    /// Peers the leader has not heard from for a while.
    pub down_peers: Vec<Peer>,
}

/// Outcome of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Metadata changed: persist `region`, delete `removed`.
    Changed {
        /// Ids of regions it replaced.
        removed: Vec<u64>,
    },
    /// Only leader or statistics changed.
    Unchanged,
}

/// The update was refused: PD knows something newer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stale region {region_id}: {reason}")]
pub struct Stale {
    /// The region that was refused.
    pub region_id: u64,
    /// What is newer.
    pub reason: String,
}

/// All regions.
#[derive(Debug, Default)]
pub struct RegionTree {
    by_start: BTreeMap<Vec<u8>, u64>,
    regions: HashMap<u64, RegionInfo>,
}

fn epoch(r: &Region) -> RegionEpoch {
    r.region_epoch.clone().unwrap_or_default()
}

/// Whether `[a_start, a_end)` and `[b_start, b_end)` intersect (empty end = +infinity).
fn overlaps(a: &Region, b: &Region) -> bool {
    let a_before_b_ends = b.end_key.is_empty() || a.start_key < b.end_key;
    let b_before_a_ends = a.end_key.is_empty() || b.start_key < a.end_key;
    a_before_b_ends && b_before_a_ends
}

impl RegionTree {
    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The region with id `id`.
    pub fn get(&self, id: u64) -> Option<&RegionInfo> {
        self.regions.get(&id)
    }

    /// The region containing `key`.
    pub fn get_by_key(&self, key: &[u8]) -> Option<&RegionInfo> {
        let (_, id) = self.by_start.range(..=key.to_vec()).next_back()?;
        let info = self.regions.get(id)?;
        let end = &info.region.end_key;
        (end.is_empty() || key < &end[..]).then_some(info)
    }

    /// Regions from the one containing `start` up to `end` (empty = no bound), at most
    /// `limit` (0 = no limit), in key order.
    pub fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<&RegionInfo> {
        let first = self.get_by_key(start).map(|i| i.region.start_key.to_vec()).unwrap_or_else(|| start.to_vec());
        let mut out = Vec::new();
        for (k, id) in self.by_start.range(first..) {
            if !end.is_empty() && &k[..] >= end {
                break;
            }
            if let Some(info) = self.regions.get(id) {
                out.push(info);
            }
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        out
    }

    /// Regions overlapping `region`'s range, other than itself.
    fn overlapping(&self, region: &Region) -> Vec<u64> {
        let mut out = Vec::new();
        // The region containing the start key, then every region starting inside the range.
        if let Some(info) = self.get_by_key(&region.start_key) {
            if info.region.id != region.id {
                out.push(info.region.id);
            }
        }
        for (k, id) in self.by_start.range(region.start_key.to_vec()..) {
            if !region.end_key.is_empty() && k[..] >= region.end_key[..] {
                break;
            }
            if *id != region.id && !out.contains(id) {
                out.push(*id);
            }
        }
        out.retain(|id| self.regions.get(id).is_some_and(|o| overlaps(&o.region, region)));
        out
    }

    /// Checks `region` against what is known; returns the regions it would replace.
    pub fn check(&self, region: &Region) -> Result<Vec<u64>, Stale> {
        let e = epoch(region);
        let stale = |reason: String| Err(Stale { region_id: region.id, reason });
        if let Some(known) = self.regions.get(&region.id) {
            let k = epoch(&known.region);
            if e.version < k.version || e.conf_ver < k.conf_ver {
                return stale(format!(
                    "epoch (conf_ver {}, version {}) is older than the known (conf_ver {}, version {})",
                    e.conf_ver, e.version, k.conf_ver, k.version
                ));
            }
        }
        let overlapping = self.overlapping(region);
        for id in &overlapping {
            let o = &self.regions[id].region;
            if epoch(o).version >= e.version {
                return stale(format!("overlaps region {} with version {} >= {}", o.id, epoch(o).version, e.version));
            }
        }
        Ok(overlapping)
    }

    /// Records a region (from a heartbeat, a split report or bootstrap) unless stale.
    pub fn update(&mut self, info: RegionInfo) -> Result<Update, Stale> {
        let removed = self.check(&info.region)?;
        for id in &removed {
            if let Some(o) = self.regions.remove(id) {
                self.by_start.remove(&o.region.start_key.to_vec());
            }
        }
        let id = info.region.id;
        let changed = match self.regions.get(&id) {
            Some(known) => known.region != info.region,
            None => true,
        };
        if let Some(old) = self.regions.get(&id) {
            if old.region.start_key != info.region.start_key {
                self.by_start.remove(&old.region.start_key.to_vec());
            }
        }
        self.by_start.insert(info.region.start_key.to_vec(), id);
        self.regions.insert(id, info);
        Ok(if changed || !removed.is_empty() { Update::Changed { removed } } else { Update::Unchanged })
    }

    /// Every region, in key order.
    pub fn all(&self) -> Vec<&RegionInfo> {
        self.by_start.values().filter_map(|id| self.regions.get(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &str, end: &str, conf_ver: u64, version: u64) -> RegionInfo {
        RegionInfo {
            region: Region {
                id,
                start_key: start.as_bytes().to_vec().into(),
                end_key: end.as_bytes().to_vec().into(),
                region_epoch: Some(RegionEpoch { conf_ver, version }),
                peers: vec![],
            },
            ..Default::default()
        }
    }

    #[test]
    fn lookups_by_key_and_scan() {
        let mut t = RegionTree::default();
        t.update(region(1, "", "b", 1, 2)).unwrap();
        t.update(region(2, "b", "d", 1, 2)).unwrap();
        t.update(region(3, "d", "", 1, 2)).unwrap();
        assert_eq!(t.get_by_key(b"").unwrap().region.id, 1);
        assert_eq!(t.get_by_key(b"a").unwrap().region.id, 1);
        assert_eq!(t.get_by_key(b"b").unwrap().region.id, 2);
        assert_eq!(t.get_by_key(b"zzz").unwrap().region.id, 3);
        let ids = |v: Vec<&RegionInfo>| v.iter().map(|i| i.region.id).collect::<Vec<_>>();
        assert_eq!(ids(t.scan(b"c", b"", 0)), vec![2, 3]);
        assert_eq!(ids(t.scan(b"", b"c", 0)), vec![1, 2]);
        assert_eq!(ids(t.scan(b"", b"", 2)), vec![1, 2]);
    }

    #[test]
    fn a_stale_heartbeat_never_overwrites_a_newer_one() {
        let mut t = RegionTree::default();
        t.update(region(1, "", "", 2, 5)).unwrap();
        // Older version or older conf_ver of the same region: refused, nothing changes.
        assert!(t.update(region(1, "", "", 2, 4)).is_err());
        assert!(t.update(region(1, "", "", 1, 5)).is_err());
        assert_eq!(t.get(1).unwrap().region.region_epoch, Some(RegionEpoch { conf_ver: 2, version: 5 }));
        // Same epoch: only leader/statistics, not a metadata change.
        assert_eq!(t.update(region(1, "", "", 2, 5)).unwrap(), Update::Unchanged);
        // Newer conf_ver: accepted.
        assert!(matches!(t.update(region(1, "", "", 3, 5)).unwrap(), Update::Changed { .. }));
    }

    #[test]
    fn splits_replace_the_parent_and_late_parents_are_refused() {
        let mut t = RegionTree::default();
        t.update(region(1, "", "", 1, 1)).unwrap();
        // The right half of a split reports first: it replaces the parent (older version).
        assert_eq!(t.update(region(2, "m", "", 1, 2)).unwrap(), Update::Changed { removed: vec![1] });
        t.update(region(1, "", "m", 1, 2)).unwrap();
        assert_eq!(t.len(), 2);
        // A heartbeat of the parent from before the split overlaps newer regions: refused.
        assert!(t.update(region(1, "", "", 1, 1)).is_err());
        // Another region claiming an overlapping range with an equal version: refused.
        assert!(t.update(region(9, "a", "n", 1, 2)).is_err());
        assert_eq!(t.get_by_key(b"z").unwrap().region.id, 2);
        assert_eq!(t.get_by_key(b"a").unwrap().region.id, 1);
    }
}
