//! Finding a request's region and store: the cache first, the route source on a miss.
//!
//! Range walks load regions in batches (`scan_regions`), so a scan over many regions asks
//! the route source once per [`KvConfig::region_batch`](super::KvConfig) regions, not once
//! per region. A route-source failure, or an answer that does not cover what was asked, is
//! a [`RetryCause::RouteSource`] retry.

use std::rc::Rc;

use super::cache::{contains, CachedRegion};
use super::client::KvClient;
use super::feedback::Retry;
use super::route::Route;
use super::stats::RetryCause;
use crate::proto::metapb::Store;

/// Which region a request is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Locate<'a> {
    /// The region containing the key.
    Key(&'a [u8]),
    /// The region with the id.
    Id(u64),
    /// The region containing `from`, while walking up to `end` (loads regions in batches).
    Forward {
        /// The key the walk is at.
        from: &'a [u8],
        /// The walk's end (empty = none).
        end: &'a [u8],
    },
    /// The region holding the keys just below `to` (empty = +∞), while walking down to
    /// `start`.
    Backward {
        /// The walk's lower bound.
        start: &'a [u8],
        /// The exclusive upper bound the walk is at.
        to: &'a [u8],
    },
}

fn route_error(what: String) -> Retry {
    Retry::after(RetryCause::RouteSource, what)
}

impl KvClient {
    /// The region `at` names.
    pub(crate) async fn locate(&self, at: &Locate<'_>) -> Result<Rc<CachedRegion>, Retry> {
        match *at {
            Locate::Key(key) => self.locate_key(key).await,
            Locate::Id(id) => self.locate_id(id).await,
            Locate::Forward { from, end } => self.locate_forward(from, end).await,
            Locate::Backward { start, to } => self.locate_backward(start, to).await,
        }
    }

    fn cache_route(&self, route: Route) -> Rc<CachedRegion> {
        self.bump(|s| s.route_loads += 1);
        self.inner.regions.borrow_mut().insert(route)
    }

    pub(crate) async fn locate_key(&self, key: &[u8]) -> Result<Rc<CachedRegion>, Retry> {
        if let Some(r) = self.inner.regions.borrow().by_key(key) {
            return Ok(r.clone());
        }
        let route = self
            .inner
            .source
            .region_by_key(key)
            .await
            .map_err(|e| route_error(format!("route source, region of key \"{}\": {e}", key.escape_ascii())))?;
        if !contains(&route.region, key) {
            return Err(route_error(format!(
                "route source answered region {} for key \"{}\" outside it",
                route.region.id,
                key.escape_ascii()
            )));
        }
        Ok(self.cache_route(route))
    }

    async fn locate_id(&self, id: u64) -> Result<Rc<CachedRegion>, Retry> {
        if let Some(r) = self.inner.regions.borrow().by_id(id) {
            return Ok(r.clone());
        }
        let route = self
            .inner
            .source
            .region_by_id(id)
            .await
            .map_err(|e| route_error(format!("route source, region {id}: {e}")))?;
        if route.region.id != id {
            return Err(route_error(format!("route source answered region {} for region {id}", route.region.id)));
        }
        Ok(self.cache_route(route))
    }

    async fn locate_forward(&self, from: &[u8], end: &[u8]) -> Result<Rc<CachedRegion>, Retry> {
        if let Some(r) = self.inner.regions.borrow().by_key(from) {
            return Ok(r.clone());
        }
        let batch = self.inner.config.region_batch;
        let routes = self
            .inner
            .source
            .scan_regions(from, end, batch)
            .await
            .map_err(|e| route_error(format!("route source, regions from \"{}\": {e}", from.escape_ascii())))?;
        for route in routes {
            self.cache_route(route);
        }
        // The source may have nothing for `from` in its scan; ask for the key itself.
        self.locate_key(from).await
    }

    async fn locate_backward(&self, start: &[u8], to: &[u8]) -> Result<Rc<CachedRegion>, Retry> {
        if let Some(r) = self.inner.regions.borrow().before(to) {
            return Ok(r.clone());
        }
        // There is no "region before a key" question; load the whole range and take the
        // last. Misses are rare: only the first step and after invalidations.
        let routes = self
            .inner
            .source
            .scan_regions(start, to, 0)
            .await
            .map_err(|e| route_error(format!("route source, regions from \"{}\": {e}", start.escape_ascii())))?;
        for route in routes {
            self.cache_route(route);
        }
        let found = self.inner.regions.borrow().before(to).cloned();
        found.ok_or_else(|| route_error(format!("route source has no region ending at \"{}\"", to.escape_ascii())))
    }

    /// Store `id`, cached.
    pub(crate) async fn store(&self, id: u64) -> Result<Rc<Store>, Retry> {
        if let Some(s) = self.inner.stores.borrow().get(id) {
            return Ok(s.clone());
        }
        let store =
            self.inner.source.store(id).await.map_err(|e| route_error(format!("route source, store {id}: {e}")))?;
        if store.id != id {
            return Err(route_error(format!("route source answered store {} for store {id}", store.id)));
        }
        let store = Rc::new(store);
        self.inner.stores.borrow_mut().insert(store.clone());
        Ok(store)
    }
}
