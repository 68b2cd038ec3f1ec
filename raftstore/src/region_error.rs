//! Constructors of the typed region errors clients act on.

use std::time::Duration;

use net::proto::errorpb::{
    region_error::Kind, EpochNotMatch, KeyNotInRegion, NotLeader, RegionError, RegionNotFound, RequestTimeout,
    ServerIsBusy, StaleCommand, UndeterminedResult, WrongShard,
};
use net::proto::metapb::{Peer, Region, RegionEpoch};

use crate::cmd::CmdError;

fn err(message: String, kind: Kind) -> CmdError {
    CmdError::Region(Box::new(RegionError { message, kind: Some(kind) }))
}

/// This peer is not the leader; `leader` is who is, if known.
pub fn not_leader(region_id: u64, leader: Option<Peer>) -> CmdError {
    err(
        format!("peer is not the leader of region {region_id}"),
        Kind::NotLeader(NotLeader { region_id, leader, leader_shard: 0, has_leader_shard: false }),
    )
}

/// The request's epoch does not match; `current` are the regions now known.
pub fn epoch_not_match(message: String, current: Vec<Region>) -> CmdError {
    err(message, Kind::EpochNotMatch(EpochNotMatch { current_regions: current }))
}

/// The key is outside the region.
pub fn key_not_in_region(key: &[u8], region: &Region) -> CmdError {
    err(
        format!("key {key:?} is not in region {}", region.id),
        Kind::KeyNotInRegion(KeyNotInRegion {
            key: key.to_vec().into(),
            region_id: region.id,
            start_key: region.start_key.clone(),
            end_key: region.end_key.clone(),
        }),
    )
}

/// The store has no such region.
pub fn region_not_found(region_id: u64) -> CmdError {
    err(format!("region {region_id} is not on this store"), Kind::RegionNotFound(RegionNotFound { region_id }))
}

/// The command was overtaken (a newer leader or term); retry.
pub fn stale_command(why: &str) -> CmdError {
    err(format!("stale command: {why}"), Kind::StaleCommand(StaleCommand {}))
}

/// The store is busy (region moving, snapshot applying); retry after a pause.
pub fn server_is_busy(reason: &str, backoff_ms: u64) -> CmdError {
    err(reason.to_string(), Kind::ServerIsBusy(ServerIsBusy { reason: reason.to_string(), backoff_ms }))
}

/// The region lives on another shard of this store.
pub fn wrong_shard(region_id: u64, shard: usize) -> CmdError {
    err(
        format!("region {region_id} is on shard {shard}"),
        Kind::WrongShard(WrongShard { region_id, shard: shard as u32 }),
    )
}

/// The request waited past the store's bound in `stage` and was dropped unapplied (a read,
/// or a write never proposed); retry.
pub fn request_timeout(stage: &str, waited: Duration) -> CmdError {
    err(
        format!("request timed out after {} ms ({stage})", waited.as_millis()),
        Kind::RequestTimeout(RequestTimeout { stage: stage.to_string(), elapsed_ms: waited.as_millis() as u64 }),
    )
}

/// A proposed write the store lost track of (`stage`: where it was); it may still apply, so
/// the client must not resend it.
pub fn undetermined(stage: &str) -> CmdError {
    err(format!("outcome unknown: {stage}"), Kind::UndeterminedResult(UndeterminedResult { stage: stage.to_string() }))
}

/// Whether a request's epoch is stale against the region's: `check_conf_ver` for membership
/// changes, `check_version` for anything that depends on the key range.
pub fn epoch_is_stale(req: &RegionEpoch, cur: &RegionEpoch, check_conf_ver: bool, check_version: bool) -> bool {
    (check_conf_ver && req.conf_ver != cur.conf_ver) || (check_version && req.version != cur.version)
}
