//! Applying committed entries to the shard's RocksDB.
//!
//! All entries of one ready go into one write batch together with the new apply state, so
//! after a crash RocksDB holds either none or all of them and the raft log replays the rest.
//! Results reach their proposals after the batch is written. Side effects that need the
//! shard (create a split's new peer, destroy a removed peer) are returned to the raft loop.

use bytes::Bytes;
use net::proto::metapb::Region;
use net::proto::raft_cmdpb::{self, AdminCmdType, CmdType, RaftCmdRequest};
use prost::Message;
use raft::eraftpb::{Entry, EntryType};
use rocksdb::WriteBatch;

use super::Peer;
use crate::engine::{delete_data_range, put_msg};
use crate::keys;
use crate::operation::{compact_log, conf_change, split};
use crate::region_error;
use crate::shard::ctx::ShardCtx;
use crate::shard::msg::{CmdError, CmdResponse, CmdResult};

/// What applying asks the raft loop to do.
#[derive(Debug)]
pub enum ApplyEffect {
    /// A split: create the new region's peer.
    Split {
        /// The region after the split (this peer's).
        left: Box<Region>,
        /// The new region.
        right: Box<Region>,
    },
    /// This peer was removed from its region.
    Destroy,
}

impl Peer {
    /// Applies committed entries; returns side effects for the raft loop.
    pub fn apply_committed(&mut self, ctx: &ShardCtx, entries: Vec<Entry>) -> Vec<ApplyEffect> {
        let mut wb = WriteBatch::default();
        let mut results: Vec<(u64, u64, Option<CmdResult>)> = Vec::with_capacity(entries.len());
        let mut effects = Vec::new();
        let mut region_changed = false;
        for e in entries {
            if self.pending_remove {
                break;
            }
            let result = match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => None,
                EntryType::EntryNormal => Some(self.apply_normal(ctx, &mut wb, &e, &mut effects, &mut region_changed)),
                EntryType::EntryConfChange => {
                    region_changed = true;
                    Some(conf_change::apply(self, &mut wb, &e, &mut effects))
                }
                EntryType::EntryConfChangeV2 => Some(Err(CmdError::Other("joint consensus is not supported".into()))),
            };
            self.raw_node.mut_store().apply_state_mut().applied_index = e.index;
            results.push((e.index, e.term, result));
        }
        let region_id = self.region_id();
        put_msg(&mut wb, &keys::apply_state_key(region_id), self.raw_node.store().apply_state());
        if region_changed {
            self.persist_region_state(&mut wb);
            self.heartbeat_due = true;
        }
        core_shard::crash_point!("apply::write::before");
        if let Err(e) = ctx.engine.write(wb) {
            // The state machine cannot move on; the raft log still has everything, so a
            // restart replays it. Keep the proposals unanswered rather than lie.
            tracing::error!(region_id, "apply write failed: {e}");
            return effects;
        }
        core_shard::crash_point!("apply::write::after");
        for (index, term, result) in results {
            self.finish_proposals(index, term, result);
        }
        effects
    }

    /// Writes this peer's region state (after a membership change or split).
    pub fn persist_region_state(&self, wb: &mut WriteBatch) {
        let state = net::proto::raft_serverpb::RegionLocalState {
            state: net::proto::raft_serverpb::PeerState::Normal as i32,
            region: Some(self.region().clone()),
            handover_seq: self.handover_seq(),
        };
        put_msg(wb, &keys::region_state_key(self.region_id()), &state);
    }

    /// The handover sequence of this peer's region state on this shard.
    pub fn handover_seq(&self) -> u64 {
        self.handover_seq
    }

    /// Answers the proposals up to `index`: the one at `index` with `result` if its term
    /// matches, earlier or replaced ones with `StaleCommand`.
    fn finish_proposals(&mut self, index: u64, term: u64, result: Option<CmdResult>) {
        let mut result = result;
        while let Some(p) = self.proposals.front() {
            if p.index > index {
                break;
            }
            let Some(p) = self.proposals.pop_front() else { break };
            if p.index == index && p.term == term {
                if self.is_leader() && term == self.raw_node.raft.term {
                    self.renew_lease(p.at);
                }
                p.reply.send(result.take().unwrap_or_else(|| Ok(CmdResponse::default())));
            } else {
                p.reply.send(Err(region_error::stale_command("the entry was replaced by a newer leader")));
            }
        }
    }

    fn apply_normal(
        &mut self,
        ctx: &ShardCtx,
        wb: &mut WriteBatch,
        e: &Entry,
        effects: &mut Vec<ApplyEffect>,
        region_changed: &mut bool,
    ) -> CmdResult {
        let cmd = RaftCmdRequest::decode(e.data.as_slice())
            .map_err(|err| CmdError::Other(format!("entry {} does not decode: {err}", e.index)))?;
        if let Some(admin) = &cmd.admin_request {
            return match AdminCmdType::from_i32(admin.cmd_type) {
                Some(AdminCmdType::CompactLog) => compact_log::apply(self, admin),
                Some(AdminCmdType::Split) => {
                    *region_changed = true;
                    split::apply(self, ctx, wb, &cmd, effects)
                }
                _ => Err(CmdError::Other(format!("admin command {} is not replicated", admin.cmd_type))),
            };
        }
        let req_epoch = cmd.header.as_ref().and_then(|h| h.region_epoch.clone()).unwrap_or_default();
        let cur = self.epoch();
        if region_error::epoch_is_stale(&req_epoch, &cur, false, true) {
            return Err(region_error::epoch_not_match(
                format!("region {} changed (version {} → {})", self.region_id(), req_epoch.version, cur.version),
                vec![self.region().clone()],
            ));
        }
        let mut responses = Vec::with_capacity(cmd.requests.len());
        for req in &cmd.requests {
            responses.push(self.apply_request(ctx, wb, req)?);
        }
        Ok(CmdResponse { responses, admin: None })
    }

    fn check_key(&self, key: &[u8]) -> Result<(), CmdError> {
        let r = self.region();
        if keys::in_range(key, &r.start_key, &r.end_key) {
            Ok(())
        } else {
            Err(region_error::key_not_in_region(key, r))
        }
    }

    fn apply_request(
        &mut self,
        ctx: &ShardCtx,
        wb: &mut WriteBatch,
        req: &raft_cmdpb::Request,
    ) -> Result<raft_cmdpb::Response, CmdError> {
        let cmd_type = CmdType::from_i32(req.cmd_type).unwrap_or(CmdType::Invalid);
        let mut resp = raft_cmdpb::Response { cmd_type: req.cmd_type, cas: None };
        match cmd_type {
            CmdType::Put => {
                let p = req.put.as_ref().ok_or_else(|| CmdError::Other("put without body".into()))?;
                self.check_key(&p.key)?;
                wb.put(keys::data_key(&p.key), &p.value);
            }
            CmdType::Delete => {
                let d = req.delete.as_ref().ok_or_else(|| CmdError::Other("delete without body".into()))?;
                self.check_key(&d.key)?;
                wb.delete(keys::data_key(&d.key));
            }
            CmdType::DeleteRange => {
                let d = req.delete_range.as_ref().ok_or_else(|| CmdError::Other("delete range without body".into()))?;
                let r = self.region();
                // Clip to the region: a range reaching past it deletes only what is ours.
                let start = if d.start_key[..] < r.start_key[..] { r.start_key.clone() } else { d.start_key.clone() };
                let end = match (&d.end_key[..], &r.end_key[..]) {
                    (e, re) if e.is_empty() || (!re.is_empty() && e > re) => r.end_key.clone(),
                    _ => d.end_key.clone(),
                };
                if end.is_empty() || start < end {
                    delete_data_range(wb, &start, &end);
                }
            }
            CmdType::Cas => {
                let c = req.cas.as_ref().ok_or_else(|| CmdError::Other("cas without body".into()))?;
                self.check_key(&c.key)?;
                resp.cas = Some(self.apply_cas(ctx, wb, c)?);
            }
            CmdType::Invalid => return Err(CmdError::Other(format!("unknown command type {}", req.cmd_type))),
        }
        Ok(resp)
    }

    /// Compare-and-swap: reads the current value (after writing what this batch holds so
    /// far, so earlier entries are visible) and writes if it matches.
    fn apply_cas(
        &mut self,
        ctx: &ShardCtx,
        wb: &mut WriteBatch,
        c: &raft_cmdpb::CasRequest,
    ) -> Result<raft_cmdpb::CasResponse, CmdError> {
        if !wb.is_empty() {
            // The partial batch carries its own apply state so it is a consistent prefix.
            put_msg(wb, &keys::apply_state_key(self.region_id()), self.raw_node.store().apply_state());
            let full = std::mem::take(wb);
            ctx.engine.write(full).map_err(|e| CmdError::Other(e.to_string()))?;
        }
        let current = ctx.engine.get(&keys::data_key(&c.key)).map_err(|e| CmdError::Other(e.to_string()))?;
        let matches = match &current {
            None => c.previous_not_exist,
            Some(v) => !c.previous_not_exist && v[..] == c.previous_value[..],
        };
        if matches {
            if c.delete {
                wb.delete(keys::data_key(&c.key));
            } else {
                wb.put(keys::data_key(&c.key), &c.value);
            }
        }
        Ok(raft_cmdpb::CasResponse {
            succeed: matches,
            previous_not_exist: current.is_none(),
            previous_value: current.map(Bytes::from).unwrap_or_default(),
        })
    }
}
