//! balance-leader and balance-region.
//!
//! Scores are counts: leaders per store; regions per store (approximate size breaks ties).
//! The counts include the effect of operators still running, so a scheduler never piles
//! more moves onto a store than it needs. A move happens only from the highest to the lowest
//! store and only while they differ by more than `max(1, tolerance × mean)`: a move narrows the
//! gap by two, so the schedulers converge and never undo their own work (no flapping).

use std::collections::{BTreeMap, HashSet};

use net::proto::metapb::PeerRole;

use super::config::ScheduleConfig;
use super::filter::StoreView;
use super::operator::Step;
use super::replica::new_peer;
use super::Plan;
use crate::region_tree::RegionInfo;

/// Whether a region may be moved now: it has a leader, nothing lags, every peer's store is up.
fn movable(
    r: &RegionInfo,
    stores: &BTreeMap<u64, StoreView>,
    now: u64,
    cfg: &ScheduleConfig,
    busy: &HashSet<u64>,
) -> bool {
    r.leader.is_some()
        && r.pending_peers.is_empty()
        && r.down_peers.is_empty()
        && !busy.contains(&r.region.id)
        && r.region.peers.iter().all(|p| stores.get(&p.store_id).is_some_and(|s| s.can_give(now, cfg)))
}

fn gap_allows(high: u64, low: u64, mean: f64, tolerance: f64) -> bool {
    let tol = (tolerance * mean).max(1.0);
    (high as f64 - low as f64) > tol
}

/// Source/target store pairs, the widest gap first, that the tolerance allows to act on.
fn pairs(
    stores: &BTreeMap<u64, StoreView>,
    now: u64,
    cfg: &ScheduleConfig,
    score: impl Fn(&StoreView) -> u64,
    tolerance: f64,
) -> Vec<(u64, u64)> {
    let eligible: Vec<&StoreView> = stores.values().filter(|s| s.can_take(now, cfg)).collect();
    if eligible.len() < 2 {
        return Vec::new();
    }
    let mean = eligible.iter().map(|s| score(s)).sum::<u64>() as f64 / eligible.len() as f64;
    let mut out = Vec::new();
    for src in stores.values().filter(|s| s.can_give(now, cfg)) {
        for dst in &eligible {
            if src.id != dst.id && gap_allows(score(src), score(dst), mean, tolerance) {
                out.push((score(src) - score(dst), src.id, dst.id));
            }
        }
    }
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|(_, s, d)| (s, d)).collect()
}

/// Leader transfers from stores with many leaders to stores with few.
pub fn balance_leader(
    regions: &[&RegionInfo],
    stores: &mut BTreeMap<u64, StoreView>,
    busy: &mut HashSet<u64>,
    now: u64,
    cfg: &ScheduleConfig,
) -> Vec<Plan> {
    let mut plans = Vec::new();
    'outer: for _ in 0..cfg.batch {
        for (src, dst) in pairs(stores, now, cfg, |s| s.leaders, cfg.leader_tolerance) {
            let pick = regions.iter().find(|r| {
                r.leader.as_ref().is_some_and(|l| l.store_id == src)
                    && r.region.peers.iter().any(|p| p.store_id == dst && p.role == PeerRole::Voter as i32)
                    && movable(r, stores, now, cfg, busy)
            });
            let Some(r) = pick else { continue };
            let target = r.region.peers.iter().find(|p| p.store_id == dst).cloned().expect("checked above");
            busy.insert(r.region.id);
            if let Some(s) = stores.get_mut(&src) {
                s.leaders -= 1;
            }
            if let Some(s) = stores.get_mut(&dst) {
                s.leaders += 1;
            }
            plans.push(Plan {
                region_id: r.region.id,
                source: "balance-leader",
                description: format!("region {}: leader from store {src} to store {dst}", r.region.id),
                steps: vec![Step::TransferLeader(target)],
            });
            continue 'outer;
        }
        break;
    }
    plans
}

/// Replica moves from stores with many regions to stores with few.
pub fn balance_region(
    regions: &[&RegionInfo],
    stores: &mut BTreeMap<u64, StoreView>,
    busy: &mut HashSet<u64>,
    now: u64,
    cfg: &ScheduleConfig,
) -> Vec<Plan> {
    let mut plans = Vec::new();
    'outer: for _ in 0..cfg.batch {
        for (src, dst) in pairs(stores, now, cfg, |s| s.regions, cfg.region_tolerance) {
            let pick = regions.iter().find(|r| {
                r.region.peers.iter().any(|p| p.store_id == src)
                    && !r.region.peers.iter().any(|p| p.store_id == dst)
                    && movable(r, stores, now, cfg, busy)
            });
            let Some(r) = pick else { continue };
            let old = r.region.peers.iter().find(|p| p.store_id == src).cloned().expect("checked above");
            let mut steps = vec![Step::AddLearner(new_peer(dst)), Step::Promote(new_peer(dst))];
            if r.leader.as_ref().is_some_and(|l| l.id == old.id) {
                match r.region.peers.iter().find(|p| p.id != old.id && p.role == PeerRole::Voter as i32) {
                    Some(o) => steps.push(Step::TransferLeader(o.clone())),
                    None => continue,
                }
            }
            steps.push(Step::Remove(old));
            busy.insert(r.region.id);
            if let Some(s) = stores.get_mut(&src) {
                s.regions -= 1;
            }
            if let Some(s) = stores.get_mut(&dst) {
                s.regions += 1;
            }
            plans.push(Plan {
                region_id: r.region.id,
                source: "balance-region",
                description: format!("region {}: replica from store {src} to store {dst}", r.region.id),
                steps,
            });
            continue 'outer;
        }
        break;
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::proto::metapb::{Peer, Region, RegionEpoch};

    fn cluster(stores_n: u64, placements: &[&[u64]], leaders: &[u64]) -> (Vec<RegionInfo>, BTreeMap<u64, StoreView>) {
        let mut regions = Vec::new();
        for (i, ps) in placements.iter().enumerate() {
            let id = i as u64 + 1;
            let peers: Vec<Peer> = ps.iter().map(|&s| Peer { id: id * 10 + s, store_id: s, role: 0 }).collect();
            regions.push(RegionInfo {
                region: Region {
                    id,
                    region_epoch: Some(RegionEpoch::default()),
                    peers: peers.clone(),
                    ..Default::default()
                },
                leader: peers.iter().find(|p| p.store_id == leaders[i]).cloned(),
                ..Default::default()
            });
        }
        let mut stores: BTreeMap<u64, StoreView> =
            (1..=stores_n).map(|id| (id, StoreView { id, last_heartbeat_ms: 100, ..Default::default() })).collect();
        for r in &regions {
            for p in &r.region.peers {
                stores.get_mut(&p.store_id).unwrap().regions += 1;
            }
            stores.get_mut(&r.leader.as_ref().unwrap().store_id).unwrap().leaders += 1;
        }
        (regions, stores)
    }

    #[test]
    fn leaders_spread_and_stop_when_balanced() {
        let cfg = ScheduleConfig::default();
        let placements: Vec<&[u64]> = vec![&[1, 2, 3]; 6];
        let (regions, mut stores) = cluster(3, &placements, &[1; 6]);
        let refs: Vec<&RegionInfo> = regions.iter().collect();
        let mut busy = HashSet::new();
        let plans = balance_leader(&refs, &mut stores, &mut busy, 100, &cfg);
        assert_eq!(plans.len(), 4, "6 leaders on 3 stores: move 4 → 2/2/2");
        let counts: Vec<u64> = stores.values().map(|s| s.leaders).collect();
        assert_eq!(counts, vec![2, 2, 2]);
        // Balanced: nothing more (no flapping).
        let plans = balance_leader(&refs, &mut stores, &mut HashSet::new(), 100, &cfg);
        assert!(plans.is_empty());
    }

    #[test]
    fn regions_move_to_new_stores() {
        let cfg = ScheduleConfig { batch: 100, ..Default::default() };
        let placements: Vec<&[u64]> = vec![&[1, 2, 3]; 10];
        let (regions, mut stores) = cluster(5, &placements, &[1; 10]);
        let refs: Vec<&RegionInfo> = regions.iter().collect();
        let plans = balance_region(&refs, &mut stores, &mut HashSet::new(), 100, &cfg);
        assert!(!plans.is_empty());
        let counts: Vec<u64> = stores.values().map(|s| s.regions).collect();
        let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert!(max - min <= 2, "{counts:?}");
        // A move off the leader's store transfers leadership before removing.
        let p = plans.iter().find(|p| p.steps.iter().any(|s| matches!(s, Step::Remove(x) if x.store_id == 1))).unwrap();
        assert!(p.steps.iter().any(|s| matches!(s, Step::TransferLeader(_))));
    }
}
