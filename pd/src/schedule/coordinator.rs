//! The scheduling coordinator: plans from the replica checker and the balance schedulers
//! become operators; heartbeats advance them and carry their steps; operators and schedulers
//! are listed, added, canceled, paused and configured by operators (people) via
//! `percore-ctl`. The configuration and the paused set are persisted.
//!
//! It reads the cluster it is given and knows nothing of the server: `server` checks each
//! request's header, then hands it here with the cluster, the id allocator and the storage.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use net::proto::metapb::Peer;
use net::proto::pdpb::*;

use super::config::ScheduleConfig;
use super::controller::OperatorController;
use super::filter::store_views;
use super::operator::{Operator, Step};
use super::replica::new_peer;
use super::{balance, replica, Plan, SCHEDULERS};
use crate::cluster::Cluster;
use crate::error::{PdError, Result};
use crate::id_alloc::IdAllocator;
use crate::region_tree::RegionInfo;
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

impl Scheduling {
    /// How long to wait between scheduling rounds.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.cfg.borrow().schedule_interval_ms)
    }

    /// One round: sweep finished operators, then collect and create new ones.
    pub async fn schedule_once(&self, cluster: &RefCell<Cluster>, ids: &IdAllocator) -> Result<()> {
        let plans = self.plan_round(&cluster.borrow());
        for (region, plan) in plans {
            let steps = assign_peer_ids(ids, plan.steps).await?;
            let op = Operator::new(&region, plan.source, plan.description, steps, now_ms());
            let cfg = self.config();
            if let Err(why) = self.ops.borrow_mut().add(op, &cfg) {
                tracing::debug!("operator not added: {why}");
            }
        }
        Ok(())
    }

    fn plan_round(&self, c: &Cluster) -> Vec<(RegionInfo, Plan)> {
        let now = now_ms();
        let cfg = self.config();
        if !c.bootstrapped {
            return Vec::new();
        }
        let regions: BTreeMap<u64, RegionInfo> =
            c.regions.all().into_iter().map(|r| (r.region.id, r.clone())).collect();
        let mut views = store_views(&c.stores, &c.regions, self.start_ms);
        let mut ops = self.ops.borrow_mut();
        ops.sweep(&regions, now, &cfg);
        ops.influence(&regions, &mut views);
        let mut busy = ops.busy_regions();
        drop(ops);
        let mut plans: Vec<(RegionInfo, Plan)> = Vec::new();
        if !self.is_paused("replica-checker") {
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
        if !self.is_paused("balance-leader") {
            balance_plans.extend(balance::balance_leader(&refs, &mut views, &mut busy, now, &cfg));
        }
        if !self.is_paused("balance-region") {
            balance_plans.extend(balance::balance_region(&refs, &mut views, &mut busy, now, &cfg));
        }
        for p in balance_plans {
            if let Some(r) = regions.get(&p.region_id) {
                plans.push((r.clone(), p));
            }
        }
        plans
    }

    /// The step for the region's leader after a heartbeat.
    pub fn step_for_region(&self, c: &Cluster, region_id: u64) -> Option<OperatorStep> {
        let r = c.regions.get(region_id)?;
        let cfg = self.config();
        self.ops.borrow_mut().on_region(r, now_ms(), &cfg)
    }

    /// Steps for every region the store leads.
    pub fn steps_for_store(&self, c: &Cluster, store_id: u64) -> Vec<OperatorStep> {
        let regions = c.regions.all();
        let cfg = self.config();
        self.ops.borrow_mut().steps_for_store(store_id, &regions, now_ms(), &cfg)
    }

    /// Operators running (and, if asked, finished).
    pub fn get_operators(&self, req: GetOperatorsRequest) -> GetOperatorsResponse {
        GetOperatorsResponse { header: None, operators: self.ops.borrow().list(req.include_finished) }
    }

    /// An operator made by hand (`percore-ctl operator add`); it replaces a scheduler's.
    pub async fn add_operator(
        &self,
        cluster: &RefCell<Cluster>,
        ids: &IdAllocator,
        req: AddOperatorRequest,
    ) -> Result<AddOperatorResponse> {
        let region = cluster
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
        let steps = assign_peer_ids(ids, steps).await?;
        let desc = format!("region {}: {} (by hand)", req.region_id, req.kind);
        let op = Operator::new(&region, "admin", desc, steps, now_ms());
        let cfg = self.config();
        let mut ops = self.ops.borrow_mut();
        // A hand-made operator replaces a scheduler's.
        ops.cancel(req.region_id);
        let info = ops.add(op, &cfg).map_err(bad)?;
        Ok(AddOperatorResponse { header: None, operator: Some(info) })
    }

    /// Cancels a region's operator.
    pub fn cancel_operator(&self, req: CancelOperatorRequest) -> Result<CancelOperatorResponse> {
        if !self.ops.borrow_mut().cancel(req.region_id) {
            return Err(PdError::server(
                ErrorType::RegionNotFound,
                format!("region {} has no operator", req.region_id),
            ));
        }
        Ok(CancelOperatorResponse::default())
    }

    /// The schedulers and whether each is paused.
    pub fn list_schedulers(&self, _req: ListSchedulersRequest) -> ListSchedulersResponse {
        let schedulers = SCHEDULERS
            .iter()
            .map(|(name, desc)| SchedulerInfo {
                name: name.to_string(),
                paused: self.is_paused(name),
                description: desc.to_string(),
            })
            .collect();
        ListSchedulersResponse { header: None, schedulers }
    }

    /// Pauses or resumes a scheduler (persisted in `storage`).
    pub async fn pause_scheduler(
        &self,
        storage: &Storage,
        req: PauseSchedulerRequest,
    ) -> Result<PauseSchedulerResponse> {
        if !SCHEDULERS.iter().any(|(n, _)| *n == req.name) {
            return Err(bad(format!("unknown scheduler {:?}", req.name)));
        }
        let list = {
            let mut p = self.paused.borrow_mut();
            if req.pause {
                p.insert(req.name.clone());
            } else {
                p.remove(&req.name);
            }
            p.iter().cloned().collect::<Vec<_>>().join(",")
        };
        storage.write(Write::synced().put(PAUSED_KEY.to_vec(), list.into_bytes())).await?;
        Ok(PauseSchedulerResponse::default())
    }

    /// Shows, and with `set` changes, the configuration (persisted in `storage`).
    pub async fn schedule_config(
        &self,
        storage: &Storage,
        req: ScheduleConfigRequest,
    ) -> Result<ScheduleConfigResponse> {
        if !req.set.is_empty() {
            let mut next = self.config();
            for (k, v) in &req.set {
                next.set(k, v).map_err(bad)?;
            }
            storage.write(Write::synced().put(CONFIG_KEY.to_vec(), next.encode())).await?;
            *self.cfg.borrow_mut() = next;
        }
        Ok(ScheduleConfigResponse { header: None, config: self.config().to_map().into_iter().collect() })
    }

    /// Operators created since PD started.
    pub fn operators_created(&self) -> u64 {
        self.ops.borrow().created
    }
}

/// Gives every new peer of a plan (id 0) a fresh id — one per store.
async fn assign_peer_ids(ids_alloc: &IdAllocator, steps: Vec<Step>) -> Result<Vec<Step>> {
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
                e.insert(ids_alloc.alloc().await?);
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
