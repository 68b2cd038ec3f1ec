//! The stores as schedulers see them, and the filters that keep replicas and leaders off
//! stores that cannot take them.

use std::collections::BTreeMap;

use net::proto::metapb::StoreState;

use super::config::ScheduleConfig;
use crate::cluster::StoreInfo;
use crate::region_tree::RegionTree;

/// One store's state for scheduling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreView {
    /// Store id.
    pub id: u64,
    /// Up, offline or tombstone.
    pub state: i32,
    /// Unix ms of its last heartbeat (PD's start time if none since).
    pub last_heartbeat_ms: u64,
    /// Regions with a peer on it (from PD's region metadata).
    pub regions: u64,
    /// Regions it leads.
    pub leaders: u64,
    /// Approximate bytes of those regions.
    pub region_size: u64,
    /// Capacity and available bytes (0 = unknown).
    pub capacity: u64,
    /// Available bytes.
    pub available: u64,
    /// The store says it is busy.
    pub busy: bool,
}

impl StoreView {
    /// No heartbeat for longer than the down time: its replicas must be replaced.
    pub fn is_down(&self, now_ms: u64, cfg: &ScheduleConfig) -> bool {
        now_ms.saturating_sub(self.last_heartbeat_ms) > cfg.max_store_down_time_ms
    }

    /// No recent heartbeat: take nothing new.
    pub fn is_disconnected(&self, now_ms: u64, cfg: &ScheduleConfig) -> bool {
        now_ms.saturating_sub(self.last_heartbeat_ms) > cfg.store_disconnect_ms
    }

    /// Nearly full.
    pub fn is_low_space(&self, cfg: &ScheduleConfig) -> bool {
        self.capacity > 0 && (self.available as f64) < cfg.low_space_ratio * self.capacity as f64
    }

    /// May receive a new replica or leadership.
    pub fn can_take(&self, now_ms: u64, cfg: &ScheduleConfig) -> bool {
        self.state == StoreState::Up as i32
            && !self.is_disconnected(now_ms, cfg)
            && !self.busy
            && !self.is_low_space(cfg)
    }

    /// May give up a replica or leadership (it must answer to do so).
    pub fn can_give(&self, now_ms: u64, cfg: &ScheduleConfig) -> bool {
        self.state == StoreState::Up as i32 && !self.is_disconnected(now_ms, cfg)
    }
}

/// Builds the store views from PD's stores and regions.
pub fn store_views(
    stores: &BTreeMap<u64, StoreInfo>,
    regions: &RegionTree,
    pd_start_ms: u64,
) -> BTreeMap<u64, StoreView> {
    let mut views: BTreeMap<u64, StoreView> = stores
        .iter()
        .map(|(&id, info)| {
            let (s, st) = (&info.store, info.stats.clone().unwrap_or_default());
            let view = StoreView {
                id,
                state: s.state,
                last_heartbeat_ms: st.last_heartbeat_ms.max(pd_start_ms),
                capacity: st.capacity,
                available: st.available,
                busy: st.is_busy,
                ..Default::default()
            };
            (id, view)
        })
        .collect();
    for info in regions.all() {
        for p in &info.region.peers {
            if let Some(v) = views.get_mut(&p.store_id) {
                v.regions += 1;
                v.region_size += info.approximate_size;
            }
        }
        if let Some(l) = &info.leader {
            if let Some(v) = views.get_mut(&l.store_id) {
                v.leaders += 1;
            }
        }
    }
    views
}
