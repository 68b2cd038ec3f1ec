//! What PD knows of the cluster: whether it is bootstrapped, its stores (with their last
//! heartbeat's statistics) and its regions. The server changes it; the schedulers read it.

use std::collections::BTreeMap;

use net::proto::metapb::Store;
use net::proto::pdpb::StoreStats;

use crate::region_tree::RegionTree;

/// A store as PD knows it.
#[derive(Debug, Clone, Default)]
pub struct StoreInfo {
    /// Its metadata.
    pub store: Store,
    /// The last heartbeat's statistics.
    pub stats: Option<StoreStats>,
}

/// Everything PD knows of the cluster.
#[derive(Default)]
pub struct Cluster {
    /// Whether the cluster was bootstrapped.
    pub bootstrapped: bool,
    /// Every store, by id.
    pub stores: BTreeMap<u64, StoreInfo>,
    /// Every region.
    pub regions: RegionTree,
}
