//! PD's scheduling loop and its RPCs: plans from the replica checker and the balance
//! schedulers become operators; heartbeats advance them and carry their steps; operators and
//! schedulers are listed, added, canceled, paused and configured by operators (people) via
//! `percore-ctl`. The configuration and the paused set are persisted.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use net::proto::metapb::Peer;
use net::proto::pdpb::*;

use crate::error::{PdError, Result};
use crate::region_tree::RegionInfo;
use crate::schedule::config::ScheduleConfig;
use crate::schedule::controller::OperatorController;
use crate::schedule::filter::store_views;
use crate::schedule::operator::{Operator, Step};
use crate::schedule::replica::new_peer;
use crate::schedule::{balance, replica, Plan, SCHEDULERS};
use crate::server::Pd;
use crate::storage::{Storage, Write};
use crate::tso::now_ms;

const CONFIG_KEY: &[u8] = b"schedule_config";
const PAUSED_KEY: &[u8] = b"schedulers_paused";

/// PD's scheduling state.
pub struct Scheduling {
    cfg: RefCell<ScheduleConfig>,
    paused: RefCell<BTreeSet<String>>,
    ops: RefCell<OperatorController>,
    start_ms: u64,
}

impl Scheduling {
    /// Loads the persisted configuration (start-up).
    pub fn load(storage: &Storage) -> Result<Self> {
        let cfg = match storage.get_blocking(CONFIG_KEY)? {
            Some(v) => ScheduleConfig::decode(&v).map_err(|e| PdError::Storage(format!("schedule config: {e}")))?,
            None => ScheduleConfig::default(),
        };
        let paused = match storage.get_blocking(PAUSED_KEY)? {
            Some(v) => String::from_utf8_lossy(&v).split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
            None => BTreeSet::new(),
        };
        Ok(Scheduling {
            cfg: RefCell::new(cfg),
            paused: RefCell::new(paused),
            ops: RefCell::default(),
            start_ms: now_ms(),
        })
    }

    /// The current configuration.
    pub fn config(&self) -> ScheduleConfig {
        self.cfg.borrow().clone()
    }

    fn is_paused(&self, name: &str) -> bool {
        self.paused.borrow().contains(name)
    }
}

fn bad(msg: impl Into<String>) -> PdError {
    PdError::server(ErrorType::InvalidArgument, msg)
}

impl Pd {
    /// Runs the schedulers every `schedule-interval` until the task is dropped.
    pub fn start_scheduler(self: &Rc<Self>) -> glommio::Task<()> {
        let pd = self.clone();
        glommio::spawn_local(async move {
            loop {
                let interval = pd.sched.cfg.borrow().schedule_interval_ms;
                glommio::timer::sleep(Duration::from_millis(interval)).await;
                if let Err(e) = pd.schedule_once().await {
                    tracing::warn!("scheduling: {e}");
                }
            }
        })
    }

    /// One round: sweep finished operators, then collect and create new ones.
    pub async fn schedule_once(&self) -> Result<()> {
        let plans = self.plan_round();
        for (region, plan) in plans {
            let steps = self.assign_peer_ids(plan.steps).await?;
            let op = Operator::new(&region, plan.source, plan.description, steps, now_ms());
            let cfg = self.sched.config();
            if let Err(why) = self.sched.ops.borrow_mut().add(op, &cfg) {
                tracing::debug!("operator not added: {why}");
            }
        }
        Ok(())
    }

    fn plan_round(&self) -> Vec<(RegionInfo, Plan)> {
        let now = now_ms();
        let cfg = self.sched.config();
        let c = self.cluster.borrow();
        if !c.bootstrapped {
            return Vec::new();
        }
        let regions: BTreeMap<u64, RegionInfo> =
            c.regions.all().into_iter().map(|r| (r.region.id, r.clone())).collect();
        let mut views = store_views(&c.stores, &c.regions, self.sched.start_ms);
        let mut ops = self.sched.ops.borrow_mut();
        ops.sweep(&regions, now, &cfg);
        ops.influence(&regions, &mut views);
        let mut busy = ops.busy_regions();
        drop(ops);
        let mut plans: Vec<(RegionInfo, Plan)> = Vec::new();
        if !self.sched.is_paused("replica-checker") {
            for r in regions.values() {
                if busy.contains(&r.region.id) {
                    continue;
                }
                if let Some(p) = replica::check(r, &views, now, &cfg) {
                    busy.insert(r.region.id);
                    plans.push((r.clone(), p));
                }
            }
        }
        let refs: Vec<&RegionInfo> = regions.values().collect();
        let mut balance_plans = Vec::new();
        if !self.sched.is_paused("balance-leader") {
            balance_plans.extend(balance::balance_leader(&refs, &mut views, &mut busy, now, &cfg));
        }
        if !self.sched.is_paused("balance-region") {
            balance_plans.extend(balance::balance_region(&refs, &mut views, &mut busy, now, &cfg));
        }
        for p in balance_plans {
            if let Some(r) = regions.get(&p.region_id) {
                plans.push((r.clone(), p));
            }
        }
        plans
    }

    /// Gives every new peer of a plan (id 0) a fresh id — one per store.
    async fn assign_peer_ids(&self, steps: Vec<Step>) -> Result<Vec<Step>> {
        let mut ids: HashMap<u64, u64> = HashMap::new();
        let mut out = Vec::with_capacity(steps.len());
        for s in steps {
            let fill = |p: &Peer, ids: &HashMap<u64, u64>| Peer { id: ids[&p.store_id], ..p.clone() };
            let needs = match &s {
                Step::AddLearner(p) | Step::Promote(p) if p.id == 0 => Some(p.store_id),
                _ => None,
            };
            if let Some(store) = needs {
                if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(store) {
                    e.insert(self.ids.alloc().await?);
                }
            }
            out.push(match s {
                Step::AddLearner(p) if p.id == 0 => Step::AddLearner(fill(&p, &ids)),
                Step::Promote(p) if p.id == 0 => Step::Promote(fill(&p, &ids)),
                other => other,
            });
        }
        Ok(out)
    }

    /// The step for the region's leader after a heartbeat.
    pub(crate) fn step_for_region(&self, region_id: u64) -> Option<OperatorStep> {
        let c = self.cluster.borrow();
        let r = c.regions.get(region_id)?;
        let cfg = self.sched.config();
        self.sched.ops.borrow_mut().on_region(r, now_ms(), &cfg)
    }

    /// Steps for every region the store leads.
    pub(crate) fn steps_for_store(&self, store_id: u64) -> Vec<OperatorStep> {
        let c = self.cluster.borrow();
        let regions = c.regions.all();
        let cfg = self.sched.config();
        self.sched.ops.borrow_mut().steps_for_store(store_id, &regions, now_ms(), &cfg)
    }

    pub(crate) fn get_operators(&self, req: GetOperatorsRequest) -> Result<GetOperatorsResponse> {
        self.check_header(&req.header)?;
        Ok(GetOperatorsResponse { header: None, operators: self.sched.ops.borrow().list(req.include_finished) })
    }

    pub(crate) async fn add_operator(&self, req: AddOperatorRequest) -> Result<AddOperatorResponse> {
        self.check_header(&req.header)?;
        let region = self
            .cluster
            .borrow()
            .regions
            .get(req.region_id)
            .cloned()
            .ok_or_else(|| PdError::server(ErrorType::RegionNotFound, format!("no region {}", req.region_id)))?;
        let peer_on = |store: u64| region.region.peers.iter().find(|p| p.store_id == store).cloned();
        let leader = region.leader.clone();
        let move_away = |victim: &Peer| -> Vec<Step> {
            let mut steps = Vec::new();
            if leader.as_ref().is_some_and(|l| l.id == victim.id) {
                if let Some(o) = region.region.peers.iter().find(|p| p.id != victim.id && p.role == 0) {
                    steps.push(Step::TransferLeader(o.clone()));
                }
            }
            steps.push(Step::Remove(victim.clone()));
            steps
        };
        let steps = match req.kind.as_str() {
            "transfer-leader" => {
                vec![Step::TransferLeader(peer_on(req.store_id).ok_or_else(|| bad("no peer on that store"))?)]
            }
            "add-peer" if peer_on(req.store_id).is_some() => {
                return Err(bad("the store already has a peer of the region"))
            }
            "add-peer" => vec![Step::AddLearner(new_peer(req.store_id)), Step::Promote(new_peer(req.store_id))],
            "remove-peer" => move_away(&peer_on(req.store_id).ok_or_else(|| bad("no peer on that store"))?),
            "move-peer" => {
                let victim = peer_on(req.from_store_id).ok_or_else(|| bad("no peer on the source store"))?;
                if peer_on(req.store_id).is_some() {
                    return Err(bad("the target store already has a peer of the region"));
                }
                let mut steps = vec![Step::AddLearner(new_peer(req.store_id)), Step::Promote(new_peer(req.store_id))];
                steps.extend(move_away(&victim));
                steps
            }
            other => {
                return Err(bad(format!(
                    "unknown operator kind {other:?}: transfer-leader, add-peer, remove-peer, move-peer"
                )))
            }
        };
        let steps = self.assign_peer_ids(steps).await?;
        let desc = format!("region {}: {} (by hand)", req.region_id, req.kind);
        let op = Operator::new(&region, "admin", desc, steps, now_ms());
        let cfg = self.sched.config();
        let mut ops = self.sched.ops.borrow_mut();
        // A hand-made operator replaces a scheduler's.
        ops.cancel(req.region_id);
        let info = ops.add(op, &cfg).map_err(bad)?;
        Ok(AddOperatorResponse { header: None, operator: Some(info) })
    }

    pub(crate) fn cancel_operator(&self, req: CancelOperatorRequest) -> Result<CancelOperatorResponse> {
        self.check_header(&req.header)?;
        if !self.sched.ops.borrow_mut().cancel(req.region_id) {
            return Err(PdError::server(
                ErrorType::RegionNotFound,
                format!("region {} has no operator", req.region_id),
            ));
        }
        Ok(CancelOperatorResponse::default())
    }

    pub(crate) fn list_schedulers(&self, req: ListSchedulersRequest) -> Result<ListSchedulersResponse> {
        self.check_header(&req.header)?;
        let schedulers = SCHEDULERS
            .iter()
            .map(|(name, desc)| SchedulerInfo {
                name: name.to_string(),
                paused: self.sched.is_paused(name),
                description: desc.to_string(),
            })
            .collect();
        Ok(ListSchedulersResponse { header: None, schedulers })
    }

    pub(crate) async fn pause_scheduler(&self, req: PauseSchedulerRequest) -> Result<PauseSchedulerResponse> {
        self.check_header(&req.header)?;
        if !SCHEDULERS.iter().any(|(n, _)| *n == req.name) {
            return Err(bad(format!("unknown scheduler {:?}", req.name)));
        }
        let list = {
            let mut p = self.sched.paused.borrow_mut();
            if req.pause {
                p.insert(req.name.clone());
            } else {
                p.remove(&req.name);
            }
            p.iter().cloned().collect::<Vec<_>>().join(",")
        };
        self.storage.write(Write::synced().put(PAUSED_KEY.to_vec(), list.into_bytes())).await?;
        Ok(PauseSchedulerResponse::default())
    }

    pub(crate) async fn schedule_config(&self, req: ScheduleConfigRequest) -> Result<ScheduleConfigResponse> {
        self.check_header(&req.header)?;
        if !req.set.is_empty() {
            let mut next = self.sched.config();
            for (k, v) in &req.set {
                next.set(k, v).map_err(bad)?;
            }
            self.storage.write(Write::synced().put(CONFIG_KEY.to_vec(), next.encode())).await?;
            *self.sched.cfg.borrow_mut() = next;
        }
        Ok(ScheduleConfigResponse { header: None, config: self.sched.config().to_map().into_iter().collect() })
    }

    /// Operators created since PD started.
    pub fn operators_created(&self) -> u64 {
        self.sched.ops.borrow().created
    }
}
