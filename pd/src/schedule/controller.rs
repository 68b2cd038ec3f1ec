//! The operator controller: at most one operator per region, limits per store, tracking on
//! heartbeats, and a short history of finished operators.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use net::proto::metapb::RegionEpoch;
use net::proto::pdpb::{OperatorInfo, OperatorStep};

use super::config::ScheduleConfig;
use super::filter::StoreView;
use super::operator::{Operator, Status, Step};
use crate::region_tree::RegionInfo;

/// Running operators and recent history.
#[derive(Default)]
pub struct OperatorController {
    running: HashMap<u64, Operator>,
    history: VecDeque<Operator>,
    next_id: u64,
    /// Operators created since PD started (for tests and metrics).
    pub created: u64,
}

const HISTORY: usize = 200;

impl OperatorController {
    /// Regions with a running operator.
    pub fn busy_regions(&self) -> HashSet<u64> {
        self.running.keys().copied().collect()
    }

    /// Whether `op` fits the store limits; returns why not.
    pub fn check_limits(&self, op: &Operator, cfg: &ScheduleConfig) -> Result<(), String> {
        for store in op.stores() {
            let n = self.running.values().filter(|o| o.stores().contains(&store)).count();
            if n >= cfg.store_limit {
                return Err(format!("store {store} has {n} operators (store-limit {})", cfg.store_limit));
            }
            if op.adds_replica_on(store) {
                let snaps = self.running.values().filter(|o| o.adds_replica_on(store)).count();
                if snaps >= cfg.max_snapshots_per_store {
                    return Err(format!("store {store} receives {snaps} replicas already"));
                }
            }
        }
        Ok(())
    }

    /// Adds an operator unless the region has one or a limit is reached.
    pub fn add(&mut self, mut op: Operator, cfg: &ScheduleConfig) -> Result<OperatorInfo, String> {
        if self.running.contains_key(&op.region_id) {
            return Err(format!("region {} already has an operator", op.region_id));
        }
        self.check_limits(&op, cfg)?;
        self.next_id += 1;
        op.id = self.next_id;
        self.created += 1;
        tracing::info!(region_id = op.region_id, source = %op.source, "operator created: {}", op.description);
        let info = op.info();
        self.running.insert(op.region_id, op);
        Ok(info)
    }

    /// Cancels the region's operator.
    pub fn cancel(&mut self, region_id: u64) -> bool {
        match self.running.remove(&region_id) {
            Some(mut op) => {
                op.status = Status::Canceled;
                self.finish(op);
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, op: Operator) {
        tracing::info!(region_id = op.region_id, status = ?op.status, "operator ended: {}", op.description);
        self.history.push_back(op);
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    /// A region heartbeat: advances the region's operator; returns the step for its leader.
    pub fn on_region(&mut self, r: &RegionInfo, now_ms: u64, cfg: &ScheduleConfig) -> Option<OperatorStep> {
        let op = self.running.get_mut(&r.region.id)?;
        let step = op.check(r, now_ms, cfg.operator_timeout_ms).cloned();
        if op.status != Status::Running {
            if let Some(op) = self.running.remove(&r.region.id) {
                self.finish(op);
            }
            return None;
        }
        step.map(|s| s.to_proto(r.region.id, r.region.region_epoch.clone()))
    }

    /// Steps of every running operator whose region `store` leads.
    pub fn steps_for_store(
        &mut self,
        store: u64,
        regions: &[&RegionInfo],
        now_ms: u64,
        cfg: &ScheduleConfig,
    ) -> Vec<OperatorStep> {
        let mut out = Vec::new();
        for r in regions {
            if r.leader.as_ref().is_some_and(|l| l.store_id == store) && self.running.contains_key(&r.region.id) {
                if let Some(s) = self.on_region(r, now_ms, cfg) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Ends operators of regions that disappeared and those past their timeout.
    pub fn sweep(&mut self, regions: &BTreeMap<u64, RegionInfo>, now_ms: u64, cfg: &ScheduleConfig) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            match regions.get(&id) {
                Some(r) => {
                    let _ = self.on_region(r, now_ms, cfg);
                }
                None => {
                    if let Some(mut op) = self.running.remove(&id) {
                        op.status = Status::Replaced;
                        self.finish(op);
                    }
                }
            }
        }
    }

    /// Applies what running operators will still change to the store counts.
    pub fn influence(&self, regions: &BTreeMap<u64, RegionInfo>, stores: &mut BTreeMap<u64, StoreView>) {
        for op in self.running.values() {
            let leader_store = regions.get(&op.region_id).and_then(|r| r.leader.as_ref()).map(|l| l.store_id);
            for s in &op.steps[op.current.min(op.steps.len())..] {
                match s {
                    Step::AddLearner(p) => {
                        if let Some(v) = stores.get_mut(&p.store_id) {
                            v.regions += 1;
                        }
                    }
                    Step::Remove(p) => {
                        if let Some(v) = stores.get_mut(&p.store_id) {
                            v.regions = v.regions.saturating_sub(1);
                        }
                    }
                    Step::TransferLeader(p) => {
                        if let Some(v) = stores.get_mut(&p.store_id) {
                            v.leaders += 1;
                        }
                        if let Some(v) = leader_store.and_then(|l| stores.get_mut(&l)) {
                            v.leaders = v.leaders.saturating_sub(1);
                        }
                    }
                    Step::Promote(_) => {}
                }
            }
        }
    }

    /// Running operators (and, if asked, recent finished ones).
    pub fn list(&self, include_finished: bool) -> Vec<OperatorInfo> {
        let mut v: Vec<OperatorInfo> = self.running.values().map(Operator::info).collect();
        if include_finished {
            v.extend(self.history.iter().map(Operator::info));
        }
        v.sort_by_key(|i| i.id);
        v
    }

    /// Running operators.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

/// The epoch of a region, for steps.
pub fn epoch_of(r: &RegionInfo) -> Option<RegionEpoch> {
    r.region.region_epoch.clone()
}
