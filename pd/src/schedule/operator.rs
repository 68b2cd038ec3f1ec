//! Operators: a sequence of steps that changes one region, tracked against the region's
//! heartbeats until every step shows in its metadata (or time runs out).
//!
//! | step | done when the region… |
//! |---|---|
//! | add learner `p` | has peer `p` (any role) |
//! | promote learner `p` | has `p` as a voter |
//! | remove peer `p` | no longer has `p` |
//! | transfer leader to `p` | is led by `p` |
//!
//! A promotion is only handed to the leader once the learner is no longer pending (it has
//! caught up), so a promoted voter never slows the quorum down.

use net::proto::metapb::{Peer, PeerRole, RegionEpoch};
use net::proto::pdpb::{operator_step::Step as PbStep, OperatorInfo, OperatorStep};

use crate::region_tree::RegionInfo;

/// One step of an operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Add `peer` as a learner.
    AddLearner(Peer),
    /// Make learner `peer` a voter.
    Promote(Peer),
    /// Remove `peer`.
    Remove(Peer),
    /// Make `peer` the leader.
    TransferLeader(Peer),
}

impl Step {
    /// Whether the region shows the step done.
    pub fn is_done(&self, r: &RegionInfo) -> bool {
        let find = |p: &Peer| r.region.peers.iter().find(|x| x.id == p.id);
        match self {
            Step::AddLearner(p) => find(p).is_some(),
            Step::Promote(p) => find(p).is_some_and(|x| x.role == PeerRole::Voter as i32),
            Step::Remove(p) => find(p).is_none(),
            Step::TransferLeader(p) => r.leader.as_ref().is_some_and(|l| l.id == p.id),
        }
    }

    /// Whether the leader can be asked to take the step now.
    pub fn is_ready(&self, r: &RegionInfo) -> bool {
        match self {
            Step::Promote(p) => !r.pending_peers.iter().any(|x| x.id == p.id),
            Step::TransferLeader(p) => !r.pending_peers.iter().any(|x| x.id == p.id),
            _ => true,
        }
    }

    /// The step as the leader receives it.
    pub fn to_proto(&self, region_id: u64, epoch: Option<RegionEpoch>) -> OperatorStep {
        let step = match self {
            Step::AddLearner(p) => PbStep::AddLearner(p.clone()),
            Step::Promote(p) => PbStep::PromoteLearner(p.clone()),
            Step::Remove(p) => PbStep::RemovePeer(p.clone()),
            Step::TransferLeader(p) => PbStep::TransferLeader(p.clone()),
        };
        OperatorStep { region_id, region_epoch: epoch, step: Some(step) }
    }

    /// The stores the step touches.
    pub fn store(&self) -> u64 {
        match self {
            Step::AddLearner(p) | Step::Promote(p) | Step::Remove(p) | Step::TransferLeader(p) => p.store_id,
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::AddLearner(p) => format!("add learner {} on store {}", p.id, p.store_id),
            Step::Promote(p) => format!("promote learner {} on store {}", p.id, p.store_id),
            Step::Remove(p) => format!("remove peer {} on store {}", p.id, p.store_id),
            Step::TransferLeader(p) => format!("transfer leader to {} on store {}", p.id, p.store_id),
        }
    }
}

/// Where an operator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Steps remain.
    Running,
    /// Every step is done.
    Finished,
    /// Not finished in time.
    Timeout,
    /// Canceled by an operator (human) or replaced.
    Canceled,
    /// The region changed under it (split or merge).
    Replaced,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Timeout => "timeout",
            Status::Canceled => "canceled",
            Status::Replaced => "replaced",
        }
    }
}

/// An operator on one region.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Unique id.
    pub id: u64,
    /// The region.
    pub region_id: u64,
    /// The region's epoch version when created (a split cancels the operator).
    pub version: u64,
    /// What created it.
    pub source: String,
    /// What it does.
    pub description: String,
    /// Its steps.
    pub steps: Vec<Step>,
    /// The first step not done yet.
    pub current: usize,
    /// Unix ms of creation.
    pub created_ms: u64,
    /// Where it stands.
    pub status: Status,
}

impl Operator {
    /// A new running operator.
    pub fn new(region: &RegionInfo, source: &str, description: String, steps: Vec<Step>, now_ms: u64) -> Self {
        Operator {
            id: 0,
            region_id: region.region.id,
            version: region.region.region_epoch.as_ref().map_or(0, |e| e.version),
            source: source.to_string(),
            description,
            steps,
            current: 0,
            created_ms: now_ms,
            status: Status::Running,
        }
    }

    /// Advances past steps the region shows done; updates the status; returns the step to
    /// hand to the leader now, if any.
    pub fn check(&mut self, r: &RegionInfo, now_ms: u64, timeout_ms: u64) -> Option<&Step> {
        if self.status != Status::Running {
            return None;
        }
        if r.region.region_epoch.as_ref().map_or(0, |e| e.version) != self.version {
            self.status = Status::Replaced;
            return None;
        }
        while self.current < self.steps.len() && self.steps[self.current].is_done(r) {
            self.current += 1;
        }
        if self.current == self.steps.len() {
            self.status = Status::Finished;
            return None;
        }
        if now_ms.saturating_sub(self.created_ms) > timeout_ms {
            self.status = Status::Timeout;
            return None;
        }
        let step = &self.steps[self.current];
        step.is_ready(r).then_some(step)
    }

    /// The stores this operator involves.
    pub fn stores(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.steps.iter().map(Step::store).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether a step still to run adds a replica on `store` (a snapshot).
    pub fn adds_replica_on(&self, store: u64) -> bool {
        self.steps[self.current.min(self.steps.len())..]
            .iter()
            .any(|s| matches!(s, Step::AddLearner(p) if p.store_id == store))
    }

    /// The operator as `percore-ctl operators` shows it.
    pub fn info(&self) -> OperatorInfo {
        OperatorInfo {
            id: self.id,
            region_id: self.region_id,
            source: self.source.clone(),
            description: self.description.clone(),
            steps: self.steps.iter().map(Step::describe).collect(),
            current_step: self.current as u32,
            status: self.status.as_str().to_string(),
            created_ms: self.created_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::proto::metapb::Region;

    fn region(peers: &[(u64, u64, PeerRole)], leader: u64, pending: &[u64]) -> RegionInfo {
        let ps: Vec<Peer> = peers.iter().map(|&(id, s, r)| Peer { id, store_id: s, role: r as i32 }).collect();
        RegionInfo {
            region: Region {
                id: 1,
                region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
                peers: ps.clone(),
                ..Default::default()
            },
            leader: ps.iter().find(|p| p.id == leader).cloned(),
            pending_peers: ps.iter().filter(|p| pending.contains(&p.id)).cloned().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_move_advances_with_the_region() {
        use PeerRole::*;
        let p = |id, s| Peer { id, store_id: s, role: 0 };
        let r0 = region(&[(1, 1, Voter), (2, 2, Voter), (3, 3, Voter)], 1, &[]);
        let steps = vec![
            Step::AddLearner(p(4, 4)),
            Step::Promote(p(4, 4)),
            Step::TransferLeader(p(2, 2)),
            Step::Remove(p(1, 1)),
        ];
        let mut op = Operator::new(&r0, "test", "move".into(), steps, 0);
        assert_eq!(op.check(&r0, 1, 1000), Some(&Step::AddLearner(p(4, 4))));
        // The learner exists but still catches up: nothing to do yet.
        let r1 = region(&[(1, 1, Voter), (2, 2, Voter), (3, 3, Voter), (4, 4, Learner)], 1, &[4]);
        assert_eq!(op.check(&r1, 2, 1000), None);
        assert_eq!(op.status, Status::Running);
        let r2 = region(&[(1, 1, Voter), (2, 2, Voter), (3, 3, Voter), (4, 4, Learner)], 1, &[]);
        assert_eq!(op.check(&r2, 3, 1000), Some(&Step::Promote(p(4, 4))));
        let r3 = region(&[(1, 1, Voter), (2, 2, Voter), (3, 3, Voter), (4, 4, Voter)], 2, &[]);
        assert_eq!(op.check(&r3, 4, 1000), Some(&Step::Remove(p(1, 1))));
        let r4 = region(&[(2, 2, Voter), (3, 3, Voter), (4, 4, Voter)], 2, &[]);
        assert_eq!(op.check(&r4, 5, 1000), None);
        assert_eq!(op.status, Status::Finished);
    }

    #[test]
    fn timeouts_and_splits_end_operators() {
        let p = Peer { id: 2, store_id: 2, role: 0 };
        let r = region(&[(1, 1, PeerRole::Voter), (2, 2, PeerRole::Voter)], 1, &[]);
        let mut op = Operator::new(&r, "t", "t".into(), vec![Step::TransferLeader(p.clone())], 0);
        assert!(op.check(&r, 2000, 1000).is_none());
        assert_eq!(op.status, Status::Timeout);
        let mut op = Operator::new(&r, "t", "t".into(), vec![Step::TransferLeader(p)], 0);
        let mut split = r.clone();
        split.region.region_epoch = Some(RegionEpoch { conf_ver: 1, version: 2 });
        assert!(op.check(&split, 1, 1000).is_none());
        assert_eq!(op.status, Status::Replaced);
    }
}
