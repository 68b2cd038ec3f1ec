//! Where regions and stores are: the [`RouteSource`] the client asks on a cache miss.
//!
//! The client does not know PD; anything that can answer "which region holds this key" and
//! "where does this store listen" serves (PD's client implements it in `pd::route`). Errors
//! are strings because the client only reports them: a failed lookup is retried with backoff
//! until the operation's deadline, and the last message is what the caller sees.

use crate::proto::metapb;
use crate::server::LocalBoxFuture;

/// A region with what is known about its leader.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Route {
    /// The region: id, key range, epoch, peers.
    pub region: metapb::Region,
    /// Its leader, if known.
    pub leader: Option<metapb::Peer>,
    /// The shard of the leader's store that hosts the region, if known.
    pub leader_shard: Option<u32>,
}

/// Answers routing questions for the client (PD in a real cluster).
pub trait RouteSource: 'static {
    /// The region containing `key`.
    fn region_by_key(&self, key: &[u8]) -> LocalBoxFuture<Result<Route, String>>;
    /// The region with id `id`.
    fn region_by_id(&self, id: u64) -> LocalBoxFuture<Result<Route, String>>;
    /// Regions in key order, from the one containing `start` up to `end` (empty = no bound),
    /// at most `limit` of them (0 = all).
    fn scan_regions(&self, start: &[u8], end: &[u8], limit: u32) -> LocalBoxFuture<Result<Vec<Route>, String>>;
    /// The store with id `store_id` (its address and per-shard addresses).
    fn store(&self, store_id: u64) -> LocalBoxFuture<Result<metapb::Store, String>>;
}
