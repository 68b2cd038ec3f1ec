//! The replica checker: every region should have `max-replicas` live voters.
//!
//! * Too few (a store is down, or the region was just created on one store): add a learner
//!   on the best store — up, connected, not full, without a peer of the region, fewest
//!   regions — promote it once it caught up, then drop the dead peer if there is one.
//! * A learner left over (an operator timed out half way): promote it if a voter is
//!   missing, remove it otherwise.
//! * Too many: remove the peer on a down store, or else on the store with most regions
//!   (moving leadership away first if that peer leads).

use std::collections::BTreeMap;

use net::proto::metapb::{Peer, PeerRole};

use super::config::ScheduleConfig;
use super::filter::StoreView;
use super::operator::Step;
use super::Plan;
use crate::region_tree::RegionInfo;

/// A placeholder for a peer PD allocates an id for when the operator is created.
pub fn new_peer(store_id: u64) -> Peer {
    Peer { id: 0, store_id, role: PeerRole::Learner as i32 }
}

/// The store a new replica of `r` should go to.
pub fn best_target(r: &RegionInfo, stores: &BTreeMap<u64, StoreView>, now: u64, cfg: &ScheduleConfig) -> Option<u64> {
    stores
        .values()
        .filter(|s| s.can_take(now, cfg) && !r.region.peers.iter().any(|p| p.store_id == s.id))
        .min_by_key(|s| (s.regions, s.id))
        .map(|s| s.id)
}

/// What the region needs, if anything.
pub fn check(r: &RegionInfo, stores: &BTreeMap<u64, StoreView>, now: u64, cfg: &ScheduleConfig) -> Option<Plan> {
    let leader = r.leader.clone()?;
    let live = |p: &&Peer| stores.get(&p.store_id).is_some_and(|s| !s.is_down(now, cfg));
    let is_voter = |p: &&Peer| p.role != PeerRole::Learner as i32;
    let live_voters = r.region.peers.iter().filter(live).filter(is_voter).count();
    let dead: Vec<Peer> = r.region.peers.iter().filter(|p| !live(p)).cloned().collect();
    let learner = r.region.peers.iter().filter(live).find(|p| !is_voter(p)).cloned();
    let id = r.region.id;
    if live_voters < cfg.max_replicas {
        let mut steps = match learner {
            Some(l) => vec![Step::Promote(l)],
            None => {
                let target = best_target(r, stores, now, cfg)?;
                vec![Step::AddLearner(new_peer(target)), Step::Promote(new_peer(target))]
            }
        };
        if let Some(d) = dead.first() {
            steps.push(Step::Remove(d.clone()));
        }
        let why = if dead.is_empty() {
            "missing replica".to_string()
        } else {
            format!("replace the peer on down store {}", dead[0].store_id)
        };
        return Some(Plan {
            region_id: id,
            source: "replica-checker",
            description: format!("region {id}: {why}"),
            steps,
        });
    }
    if let Some(l) = learner {
        return Some(Plan {
            region_id: id,
            source: "replica-checker",
            description: format!("region {id}: remove a leftover learner"),
            steps: vec![Step::Remove(l)],
        });
    }
    if r.region.peers.len() > cfg.max_replicas {
        let victim = dead.first().cloned().or_else(|| {
            r.region
                .peers
                .iter()
                .max_by_key(|p| (stores.get(&p.store_id).map_or(0, |s| s.regions), p.store_id))
                .cloned()
        })?;
        let mut steps = Vec::new();
        if victim.id == leader.id {
            let other = r.region.peers.iter().find(|p| p.id != victim.id && live(p) && is_voter(p))?.clone();
            steps.push(Step::TransferLeader(other));
        }
        steps.push(Step::Remove(victim));
        return Some(Plan {
            region_id: id,
            source: "replica-checker",
            description: format!("region {id}: remove an extra replica"),
            steps,
        });
    }
    if let Some(d) = dead.first() {
        // Enough live voters, yet a dead peer: just drop it.
        return Some(Plan {
            region_id: id,
            source: "replica-checker",
            description: format!("region {id}: drop peer on down store {}", d.store_id),
            steps: vec![Step::Remove(d.clone())],
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::proto::metapb::{Region, RegionEpoch};

    fn stores(specs: &[(u64, u64, u64)]) -> BTreeMap<u64, StoreView> {
        specs
            .iter()
            .map(|&(id, regions, hb)| (id, StoreView { id, regions, last_heartbeat_ms: hb, ..Default::default() }))
            .collect()
    }

    fn region(peers: &[(u64, u64)], leader: u64) -> RegionInfo {
        let ps: Vec<Peer> = peers.iter().map(|&(id, s)| Peer { id, store_id: s, role: 0 }).collect();
        RegionInfo {
            region: Region {
                id: 9,
                region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
                peers: ps.clone(),
                ..Default::default()
            },
            leader: ps.iter().find(|p| p.id == leader).cloned(),
            ..Default::default()
        }
    }

    #[test]
    fn repairs_missing_extra_and_dead_replicas() {
        let cfg = ScheduleConfig { max_store_down_time_ms: 1000, store_disconnect_ms: 500, ..Default::default() };
        let now = 10_000;
        // One replica, stores 2 and 3 available: add on the emptier one.
        let s = stores(&[(1, 5, now), (2, 7, now), (3, 1, now)]);
        let p = check(&region(&[(1, 1)], 1), &s, now, &cfg).unwrap();
        assert_eq!(p.steps, vec![Step::AddLearner(new_peer(3)), Step::Promote(new_peer(3))]);
        // Three replicas, store 3 down: replace it on store 4.
        let s = stores(&[(1, 5, now), (2, 5, now), (3, 5, now - 5000), (4, 0, now)]);
        let p = check(&region(&[(1, 1), (2, 2), (3, 3)], 1), &s, now, &cfg).unwrap();
        assert_eq!(p.steps[..2], [Step::AddLearner(new_peer(4)), Step::Promote(new_peer(4))]);
        assert_eq!(p.steps[2], Step::Remove(Peer { id: 3, store_id: 3, role: 0 }));
        // Four replicas: remove the one on the busiest store, moving leadership first.
        let s = stores(&[(1, 9, now), (2, 5, now), (3, 5, now), (4, 5, now)]);
        let p = check(&region(&[(1, 1), (2, 2), (3, 3), (4, 4)], 1), &s, now, &cfg).unwrap();
        assert!(matches!(p.steps[0], Step::TransferLeader(_)));
        assert_eq!(p.steps[1], Step::Remove(Peer { id: 1, store_id: 1, role: 0 }));
        // Healthy: nothing.
        let s = stores(&[(1, 5, now), (2, 5, now), (3, 5, now)]);
        assert!(check(&region(&[(1, 1), (2, 2), (3, 3)], 1), &s, now, &cfg).is_none());
        // No target available: nothing rather than something wrong.
        let s = stores(&[(1, 5, now), (2, 5, now - 800)]);
        assert!(check(&region(&[(1, 1)], 1), &s, now, &cfg).is_none());
    }
}
