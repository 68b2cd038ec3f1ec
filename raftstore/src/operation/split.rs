//! Region split, its whole life.
//!
//! *Check* (leaders, background): every `split-check-interval` the region's size and key
//! count are measured from a RocksDB snapshot on the blocking pool ([`check_region`]); past
//! `region-split-size` or `region-split-keys`, the key in the middle (by bytes) is the split
//! key. An operator's `percore-ctl split KEY` enters at the next step.
//! *Ask*: PD allocates the new region's id and one peer id per replica (`AskSplit`).
//! *Propose*: the leader checks the epoch and the key, and proposes `Split`.
//! *Apply*: every replica checks the epoch again, then in one batch: the left region (this
//! one) ends at the split key, the right one is new, both with `version + 1`; the right
//! region's apply state starts at index 5, term 5.
//! *Result*: the raft loop creates the right region's peer on this shard (next to the old
//! leader it campaigns at once), tells the shard coordinator — which may move it to a
//! less-loaded shard ([`place_split_region`]) — and the leader reports the split to PD.

use std::time::Instant;

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::{self, Region, RegionEpoch};
use net::proto::raft_cmdpb::{AdminCmdType, AdminRequest, AdminResponse, RaftCmdRequest, SplitRequest};
use net::proto::raft_serverpb::{PeerState, RegionLocalState};
use rocksdb::WriteBatch;

use crate::cmd::{ApplyEffect, CmdError, CmdResponse, CmdResult};
use crate::ctx::ShardCtx;
use crate::engine::put_msg;
use crate::keys;
use crate::msg::{Event, ShardMsg};
use crate::peer::{Lifecycle, Peer, Work};
use crate::region_error;
use crate::shard::Shard;
use crate::storage::PeerStorage;

/// Whether `key` can split `region`.
fn check_key(region: &Region, key: &[u8]) -> Result<(), String> {
    if key.is_empty() || key[..] <= region.start_key[..] || !keys::in_range(key, &region.start_key, &region.end_key) {
        return Err(format!("split key {key:?} is not strictly inside region {}", region.id));
    }
    Ok(())
}

impl Shard {
    /// *Check*: every leader that may split measures its region (tick work).
    pub(crate) fn run_split_checks(&mut self) {
        let cfg = self.ctx.cfg.clone();
        for p in self.peers.values() {
            if !p.is_leader() || !p.allows(Work::SplitCheck) || !p.is_initialized() {
                continue;
            }
            let region = p.region().clone();
            let epoch = p.epoch();
            let Ok(snap) = self.ctx.engine.snapshot() else { return };
            let ctx = self.ctx.clone();
            let (size, keys) = (cfg.split.region_split_size, cfg.split.region_split_keys);
            let task = async move {
                let region_id = region.id;
                let r = glommio::executor().spawn_blocking(move || check_region(&snap, &region, size, keys)).await;
                match r {
                    Ok((size, keys, split_key)) => {
                        ctx.push(Event::SplitCheckResult { region_id, epoch, split_key, size, keys })
                    }
                    Err(e) => tracing::warn!(region_id, "split check failed: {e}"),
                }
            };
            if let Ok(t) = glommio::spawn_local_into(task, self.ctx.queues.background) {
                t.detach();
            }
        }
    }

    /// A split check measured the region; split it if it found a key.
    pub(crate) fn on_split_check(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        key: Option<Bytes>,
        size: u64,
        keys: u64,
    ) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        p.set_approximate((size, keys));
        if let Some(k) = key {
            self.start_split(region_id, epoch, k, None);
        }
    }

    /// *Ask*: a split at `split_key` starts with ids from PD. `reply` is an operator's split
    /// command waiting for the result.
    pub(crate) fn start_split(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        split_key: Bytes,
        reply: Option<oneshot::Sender<CmdResult>>,
    ) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        if let Err(e) = p.check_proposal(&epoch, true, true) {
            if let Some(r) = reply {
                r.send(Err(e));
            }
            return;
        }
        if p.lifecycle() == Lifecycle::Active {
            p.set_lifecycle(Lifecycle::Splitting { since: Instant::now() });
        }
        let region = p.region().clone();
        let ctx = self.ctx.clone();
        glommio::spawn_local(async move {
            match ctx.pd.ask_split(region).await {
                Ok((new_region_id, new_peer_ids)) => {
                    ctx.push(Event::SplitIds { region_id, epoch, split_key, new_region_id, new_peer_ids, reply })
                }
                Err(e) => {
                    tracing::warn!(region_id, "PD refused the split: {e}");
                    if let Some(r) = reply {
                        r.send(Err(CmdError::Other(format!("PD: {e}"))));
                    }
                }
            }
        })
        .detach();
    }

    /// *Propose*: PD gave the ids.
    pub(crate) fn on_split_ids(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        split_key: Bytes,
        new_region_id: u64,
        new_peer_ids: Vec<u64>,
        reply: Option<oneshot::Sender<CmdResult>>,
    ) {
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let (tx, rx) = oneshot::channel();
        p.propose_split(&epoch, split_key, new_region_id, new_peer_ids, tx);
        self.touched.insert(region_id);
        let started = Instant::now();
        glommio::spawn_local(async move {
            let r = rx.await.unwrap_or_else(|_| Err(region_error::stale_command("split dropped")));
            if let Err(e) = &r {
                tracing::debug!(region_id, "split not applied after {:?}: {e:?}", started.elapsed());
            }
            if let Some(reply) = reply {
                reply.send(r);
            }
        })
        .detach();
    }

    /// *Result*: a split applied here: create the new region's peer.
    pub(crate) fn on_split_applied(&mut self, region_id: u64, left: Region, right: Region) {
        core_shard::crash_point!("split::apply::after");
        self.ctx.report_range(left.id, Some(&left));
        let store_id = self.ctx.store_id.get();
        let is_leader = self.peers.get(&region_id).is_some_and(|p| p.is_leader());
        if let Some(existing) = self.peers.get(&right.id) {
            if existing.is_initialized() {
                return;
            }
            self.destroy_peer(right.id, false);
        } else if let Some(s) = self.ctx.shard_of(right.id).filter(|&s| s != self.ctx.shard_id) {
            // The new region already lives on another shard (it got a snapshot there):
            // our copy of its range is stale.
            tracing::info!(region_id = right.id, shard = s, "split target exists on another shard");
            let mut wb = WriteBatch::default();
            self.ctx.engine.clear_region(&mut wb, &right);
            if let Err(e) = self.ctx.engine.write_or_defer(wb, "stale split target") {
                tracing::warn!(region_id = right.id, "cannot drop the stale copy of a split's region: {e}");
            }
            return;
        }
        let Some(me) = right.peers.iter().find(|p| p.store_id == store_id).cloned() else { return };
        self.ctx.report_range(right.id, Some(&right));
        match Peer::new(&self.ctx, right.clone(), me, PeerStorage::initial_apply_state()) {
            Ok(mut peer) => {
                if is_leader {
                    // The new region's peer next to the old leader campaigns at once.
                    let _ = peer.raft_mut().campaign();
                }
                self.peers.insert(right.id, peer);
                self.touched.insert(right.id);
                self.ctx.count_region(1);
                self.ctx.announce(right.id, Some(self.ctx.shard_id));
                crate::router::send(&self.ctx, 0, ShardMsg::Created { region_id: right.id, shard: self.ctx.shard_id });
            }
            Err(e) => tracing::error!(region_id = right.id, "cannot create the split's peer: {e}"),
        }
        if is_leader {
            let ctx = self.ctx.clone();
            glommio::spawn_local(async move {
                if let Err(e) = ctx.pd.report_split(left, right).await {
                    tracing::warn!("report split: {e}");
                }
            })
            .detach();
        }
    }
}

impl Peer {
    /// *Propose*: a split with ids from PD (leader).
    pub fn propose_split(
        &mut self,
        epoch: &RegionEpoch,
        split_key: Bytes,
        new_region_id: u64,
        new_peer_ids: Vec<u64>,
        reply: oneshot::Sender<CmdResult>,
    ) {
        if let Err(e) = self.check_proposal(epoch, true, true) {
            return reply.send(Err(e));
        }
        if let Err(why) = check_key(self.region(), &split_key) {
            return reply.send(Err(CmdError::Other(why)));
        }
        if new_peer_ids.len() != self.region().peers.len() {
            return reply.send(Err(region_error::epoch_not_match(
                "the region's peers changed since PD allocated ids".into(),
                vec![self.region().clone()],
            )));
        }
        let cmd = RaftCmdRequest {
            header: Some(self.cmd_header()),
            requests: vec![],
            admin_request: Some(AdminRequest {
                cmd_type: AdminCmdType::Split as i32,
                split: Some(SplitRequest { split_key, new_region_id, new_peer_ids }),
                ..Default::default()
            }),
        };
        self.propose_cmd(cmd, reply);
    }

    /// *Apply*: a committed split.
    pub(super) fn apply_split(
        &mut self,
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
        let region = self.region().clone();
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
        self.raft_mut().mut_store().set_region(left.clone());
        self.set_approximate((0, 0));
        if matches!(self.lifecycle(), Lifecycle::Splitting { .. }) {
            self.set_lifecycle(Lifecycle::Active);
        }
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
}

/// *Placement*, on the coordinator (shard 0): a split created `region_id` on `shard`. The vote
/// requests held for it (`router::place`) go to its peer now; the region moves to the
/// least-loaded shard if that one has clearly fewer regions.
pub fn place_split_region(ctx: &ShardCtx, region_id: u64, shard: usize) {
    for m in ctx.directory.take_held_for_split(region_id) {
        crate::router::route_raft(ctx, m);
    }
    if !ctx.cfg.split.balance_shards_on_split || ctx.shards < 2 {
        return;
    }
    let counts: Vec<u32> =
        ctx.shared.region_counts.iter().map(|c| c.load(std::sync::atomic::Ordering::Relaxed)).collect();
    let target = ctx.shared.least_loaded_shard();
    if target != shard && counts[target] + 1 < counts[shard] {
        if shard == ctx.shard_id {
            ctx.push(Event::HandoverOut { region_id, to_shard: target });
        } else {
            crate::router::send(ctx, shard, ShardMsg::HandoverOut { region_id, to_shard: target });
        }
    }
}

/// Measures a region and picks the middle key when it is too big (runs on the background
/// queue; RocksDB reads of a consistent snapshot). Returns `(size, keys, split key)`.
///
/// Raw and transactional data both count: every pair of the raw family and of the three
/// transactional families (a version, a lock or a long value each count as a key). The
/// split key is where the bytes (or keys) reach half, walking the raw family, then each
/// transactional one; a transactional key gives its user key, so every version of a key
/// stays on one side.
pub fn check_region(
    snap: &crate::engine::OwnedSnapshot,
    region: &Region,
    split_size: u64,
    split_keys: u64,
) -> crate::error::Result<(u64, u64, Option<Bytes>)> {
    let (mut size, mut count) = (0u64, 0u64);
    snap.scan_region(&region.start_key, &region.end_key, |_, k, v| {
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
    snap.scan_region(&region.start_key, &region.end_key, |family, k, v| {
        acc += (k.len() + v.len()) as u64;
        n += 1;
        if (acc >= half_size && size > split_size) || (n >= half_keys && count > split_keys) {
            key = match crate::engine::family_cf(family) {
                None => Some(Bytes::copy_from_slice(k)),
                Some(cf) => crate::txn::codec::user_key_of(cf, k).ok().map(Bytes::from),
            };
            return false;
        }
        true
    })?;
    let key = key.filter(|k| check_key(region, k).is_ok());
    Ok((size, count, key))
}
