//! Region split.
//!
//! *Check* (background, on leaders): every `split-check-interval` the region's size and key
//! count are measured from the shard's RocksDB; past `region-split-size` or
//! `region-split-keys`, the key in the middle (by bytes) is the split key.
//! *Ask*: PD allocates the new region's id and one peer id per replica (`AskSplit`).
//! *Propose*: the leader checks the epoch and the key, and proposes `Split`.
//! *Apply*: every replica checks the epoch again, then in one batch: the left region (this
//! one) ends at the split key, the right one is new, both with `version + 1`; the right
//! region's apply state starts at index 5, term 5.
//! *Result*: the raft loop creates the right region's peer on this shard, tells the shard
//! coordinator (which may move it to a less-loaded shard), and the leader reports the split
//! to PD.

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::{self, Region, RegionEpoch};
use net::proto::raft_cmdpb::{AdminCmdType, AdminRequest, AdminResponse, RaftCmdRequest, SplitRequest};
use net::proto::raft_serverpb::{PeerState, RegionLocalState};
use rocksdb::WriteBatch;

use crate::engine::put_msg;
use crate::keys;
use crate::peer::apply::ApplyEffect;
use crate::peer::Peer;
use crate::region_error;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::{CmdError, CmdResponse, CmdResult};
use crate::storage::PeerStorage;

/// Whether `key` can split `region`.
fn check_key(region: &Region, key: &[u8]) -> Result<(), String> {
    if key.is_empty() || key[..] <= region.start_key[..] || !keys::in_range(key, &region.start_key, &region.end_key) {
        return Err(format!("split key {key:?} is not strictly inside region {}", region.id));
    }
    Ok(())
}

/// Proposes a split with ids from PD (leader).
pub fn propose(
    peer: &mut Peer,
    epoch: &RegionEpoch,
    split_key: Bytes,
    new_region_id: u64,
    new_peer_ids: Vec<u64>,
    reply: oneshot::Sender<CmdResult>,
) {
    if let Err(e) = peer.check_proposal(epoch, true, true) {
        return reply.send(Err(e));
    }
    if let Err(why) = check_key(peer.region(), &split_key) {
        return reply.send(Err(CmdError::Other(why)));
    }
    if new_peer_ids.len() != peer.region().peers.len() {
        return reply.send(Err(region_error::epoch_not_match(
            "the region's peers changed since PD allocated ids".into(),
            vec![peer.region().clone()],
        )));
    }
    let cmd = RaftCmdRequest {
        header: Some(peer.cmd_header()),
        requests: vec![],
        admin_request: Some(AdminRequest {
            cmd_type: AdminCmdType::Split as i32,
            split: Some(SplitRequest { split_key, new_region_id, new_peer_ids }),
            ..Default::default()
        }),
    };
    peer.propose_cmd(cmd, reply);
}

/// Applies a committed split.
pub fn apply(
    peer: &mut Peer,
    _ctx: &ShardCtx,
    wb: &mut WriteBatch,
    cmd: &RaftCmdRequest,
    effects: &mut Vec<ApplyEffect>,
) -> CmdResult {
    core_shard::crash_point!("split::apply::before");
    let req = cmd
        .admin_request
        .as_ref()
        .and_then(|a| a.split.clone())
        .ok_or_else(|| CmdError::Other("split without body".into()))?;
    let epoch = cmd.header.as_ref().and_then(|h| h.region_epoch.clone()).unwrap_or_default();
    let region = peer.region().clone();
    if region_error::epoch_is_stale(&epoch, &region.region_epoch.clone().unwrap_or_default(), true, true) {
        return Err(region_error::epoch_not_match(
            format!("split of region {} proposed at an older epoch", region.id),
            vec![region],
        ));
    }
    check_key(&region, &req.split_key).map_err(CmdError::Other)?;
    if req.new_peer_ids.len() != region.peers.len() {
        return Err(CmdError::Other("split peer ids do not match the peers".into()));
    }
    let mut new_epoch = region.region_epoch.clone().unwrap_or_default();
    new_epoch.version += 1;
    let mut left = region.clone();
    left.end_key = req.split_key.clone();
    left.region_epoch = Some(new_epoch.clone());
    let right = Region {
        id: req.new_region_id,
        start_key: req.split_key.clone(),
        end_key: region.end_key.clone(),
        region_epoch: Some(new_epoch),
        peers: region
            .peers
            .iter()
            .zip(&req.new_peer_ids)
            .map(|(p, &id)| metapb::Peer { id, store_id: p.store_id, role: p.role })
            .collect(),
    };
    let right_state =
        RegionLocalState { state: PeerState::Normal as i32, region: Some(right.clone()), handover_seq: 0 };
    put_msg(wb, &keys::region_state_key(right.id), &right_state);
    put_msg(wb, &keys::apply_state_key(right.id), &PeerStorage::initial_apply_state());
    peer.raw_node.mut_store().set_region(left.clone());
    peer.approximate = (0, 0);
    peer.splitting = None;
    tracing::info!(region_id = left.id, new_region_id = right.id, split_key = ?req.split_key, "region split");
    effects.push(ApplyEffect::Split { left: Box::new(left.clone()), right: Box::new(right.clone()) });
    Ok(CmdResponse {
        responses: vec![],
        admin: Some(AdminResponse {
            cmd_type: AdminCmdType::Split as i32,
            region: None,
            left: Some(left),
            right: Some(right),
        }),
    })
}

/// Measures a region and picks the middle key when it is too big (runs on the background
/// queue; RocksDB reads of a consistent snapshot). Returns `(size, keys, split key)`.
pub fn check_region(
    snap: &crate::engine::OwnedSnapshot,
    region: &Region,
    split_size: u64,
    split_keys: u64,
) -> crate::error::Result<(u64, u64, Option<Bytes>)> {
    let (mut size, mut count) = (0u64, 0u64);
    snap.scan(&region.start_key, &region.end_key, |k, v| {
        size += (k.len() + v.len()) as u64;
        count += 1;
        true
    })?;
    if size <= split_size && count <= split_keys {
        return Ok((size, count, None));
    }
    // Second pass: the first key past half of the bytes (or half of the keys).
    let (half_size, half_keys) = (size / 2, count / 2);
    let (mut acc, mut n) = (0u64, 0u64);
    let mut key = None;
    snap.scan(&region.start_key, &region.end_key, |k, v| {
        acc += (k.len() + v.len()) as u64;
        n += 1;
        if (acc >= half_size && size > split_size) || (n >= half_keys && count > split_keys) {
            key = Some(Bytes::copy_from_slice(k));
            return false;
        }
        true
    })?;
    let key = key.filter(|k| check_key(region, k).is_ok());
    Ok((size, count, key))
}
