//! PD as the routing client's [`RouteSource`]: regions by key, by id and by range, and
//! stores, through [`PdClient`] (which already retries network errors until its own
//! deadline). PD's errors are handed to the KV client as text; it retries them until the
//! operation's deadline and reports the last one.

use net::kv::{Route, RouteSource};
use net::proto::metapb::Store;
use net::server::LocalBoxFuture;

use crate::client::{PdClient, RegionRoute};

fn route(r: RegionRoute) -> Route {
    Route { region: r.region, leader: r.leader, leader_shard: r.leader_shard }
}

impl RouteSource for PdClient {
    fn region_by_key(&self, key: &[u8]) -> LocalBoxFuture<Result<Route, String>> {
        let (pd, key) = (self.clone(), key.to_vec());
        Box::pin(async move { pd.get_region(&key).await.map(route).map_err(|e| e.to_string()) })
    }

    fn region_by_id(&self, id: u64) -> LocalBoxFuture<Result<Route, String>> {
        let pd = self.clone();
        Box::pin(async move { pd.get_region_by_id(id).await.map(route).map_err(|e| e.to_string()) })
    }

    fn scan_regions(&self, start: &[u8], end: &[u8], limit: u32) -> LocalBoxFuture<Result<Vec<Route>, String>> {
        let (pd, start, end) = (self.clone(), start.to_vec(), end.to_vec());
        Box::pin(async move {
            let routes = pd.scan_regions(&start, &end, limit).await.map_err(|e| e.to_string())?;
            Ok(routes.into_iter().map(route).collect())
        })
    }

    fn store(&self, store_id: u64) -> LocalBoxFuture<Result<Store, String>> {
        let pd = self.clone();
        Box::pin(async move { pd.get_store(store_id).await.map(|(s, _)| s).map_err(|e| e.to_string()) })
    }
}

/// PD's TSO as the transactional client's [`TimestampSource`].
impl net::kv::TimestampSource for PdClient {
    fn get_ts(&self) -> LocalBoxFuture<Result<u64, String>> {
        let pd = self.clone();
        Box::pin(async move { pd.get_ts().await.map_err(|e| e.to_string()) })
    }
}
