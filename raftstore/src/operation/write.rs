//! Normal writes: put, delete, delete range, compare-and-swap, transactional commands.
//!
//! *Propose* (leader): the peer must take writes (not moving between shards), lead, match the
//! request's region version, and own every key; the requests become one `RaftCmdRequest`.
//! *Apply* (every replica): the region version is checked again (a split in between makes the
//! command `EpochNotMatch`), each key again, and the changes go into the ready's write batch.
//! A compare-and-swap reads the current value through what the batch already holds
//! ([`Staged`]), so it sees the entries before it in the same batch. A transactional command
//! (`TxnCommand`: prewrite, commit, rollback…) is processed here too, on every replica,
//! against the state at its log position (the batch's changes included): the raft log
//! orders commands on the same keys, so no latch is needed and no leader's snapshot can be
//! stale. Its answer is the encoded `kvrpcpb` response.
//! *Result*: the responses (a CAS's outcome) answer the proposal once the batch is written.

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::{self, CmdType, RaftCmdRequest, Request};
use rocksdb::WriteBatch;

use crate::cmd::{CmdError, CmdResponse, CmdResult};
use crate::ctx::ShardCtx;
use crate::engine::{delete_data_range, ApplyView, TxnStaged};
use crate::keys;
use crate::peer::{Peer, Work};
use crate::region_error;
use crate::txn;

/// The keys a request touches (a range's start and, if any, its end).
fn request_keys(r: &Request) -> Vec<&[u8]> {
    match CmdType::from_i32(r.cmd_type) {
        Some(CmdType::Put) => r.put.iter().map(|p| &p.key[..]).collect(),
        Some(CmdType::Delete) => r.delete.iter().map(|d| &d.key[..]).collect(),
        Some(CmdType::Cas) => r.cas.iter().map(|c| &c.key[..]).collect(),
        Some(CmdType::DeleteRange) => r.delete_range.iter().map(|d| &d.start_key[..]).collect(),
        _ => Vec::new(),
    }
}

/// A change the apply batch holds, in order.
enum StagedOp {
    Put(Bytes, Bytes),
    Delete(Bytes),
    DeleteRange(Bytes, Bytes),
}

/// What the current apply batch has written so far: RocksDB does not read a batch that is
/// not written yet, so a compare-and-swap or a transactional command looks here first.
#[derive(Default)]
pub struct Staged {
    ops: Vec<StagedOp>,
    txn: TxnStaged,
}

impl Staged {
    /// The batch is in RocksDB: hands its changes to the shard's value cache (a range delete
    /// clears the cache).
    pub fn apply_to_cache(&self, ctx: &ShardCtx) {
        if self.ops.is_empty() {
            return;
        }
        if self.ops.iter().any(|op| matches!(op, StagedOp::DeleteRange(..))) {
            return ctx.engine.clear_value_cache();
        }
        ctx.engine.cache_applied(self.ops.iter().map(|op| match op {
            StagedOp::Put(k, v) => (k, Some(v)),
            StagedOp::Delete(k) => (k, None),
            StagedOp::DeleteRange(k, _) => (k, None),
        }));
    }

    /// The value the batch gives `key`: `Some(Some(v))` written, `Some(None)` deleted,
    /// `None` untouched by the batch.
    fn lookup(&self, key: &[u8]) -> Option<Option<Bytes>> {
        self.ops.iter().rev().find_map(|op| match op {
            StagedOp::Put(k, v) if &k[..] == key => Some(Some(v.clone())),
            StagedOp::Delete(k) if &k[..] == key => Some(None),
            StagedOp::DeleteRange(s, e) if keys::in_range(key, s, e) => Some(None),
            _ => None,
        })
    }
}

impl Peer {
    /// Proposes a normal write; returns its entry's index if it was proposed (otherwise
    /// `reply` has its answer already).
    pub fn propose_write(
        &mut self,
        epoch: &RegionEpoch,
        mut requests: Vec<Request>,
        reply: oneshot::Sender<CmdResult>,
    ) -> Option<u64> {
        if let Err(e) = self.admit(Work::Write).and_then(|()| self.check_proposal(epoch, false, true)) {
            reply.send(Err(e));
            return None;
        }
        let region = self.region();
        for r in &requests {
            for k in request_keys(r) {
                if !keys::in_range(k, &region.start_key, &region.end_key) {
                    reply.send(Err(region_error::key_not_in_region(k, region)));
                    return None;
                }
            }
        }
        let one_pc = match self.prepare_one_pc(&mut requests) {
            Ok(c) => c,
            Err(e) => {
                reply.send(Err(e));
                return None;
            }
        };
        let mut header = self.cmd_header();
        header.region_epoch = Some(epoch.clone());
        let cmd = RaftCmdRequest { header: Some(header), requests, admin_request: None };
        let index = self.propose_cmd(cmd, reply)?;
        if let Some(chosen) = one_pc {
            self.one_pc_proposed(index, chosen);
        }
        Some(index)
    }

    /// Applies a committed write command into `wb`.
    pub(super) fn apply_write(
        &mut self,
        ctx: &ShardCtx,
        wb: &mut WriteBatch,
        staged: &mut Staged,
        cmd: &RaftCmdRequest,
    ) -> CmdResult {
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
            responses.push(self.apply_request(ctx, wb, staged, req)?);
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
        staged: &mut Staged,
        req: &raft_cmdpb::Request,
    ) -> Result<raft_cmdpb::Response, CmdError> {
        let cmd_type = CmdType::from_i32(req.cmd_type).unwrap_or(CmdType::Invalid);
        let mut resp = raft_cmdpb::Response { cmd_type: req.cmd_type, ..Default::default() };
        match cmd_type {
            CmdType::Put => {
                let p = req.put.as_ref().ok_or_else(|| CmdError::Other("put without body".into()))?;
                self.check_key(&p.key)?;
                wb.put(keys::data_key(&p.key), &p.value);
                staged.ops.push(StagedOp::Put(p.key.clone(), p.value.clone()));
            }
            CmdType::Delete => {
                let d = req.delete.as_ref().ok_or_else(|| CmdError::Other("delete without body".into()))?;
                self.check_key(&d.key)?;
                wb.delete(keys::data_key(&d.key));
                staged.ops.push(StagedOp::Delete(d.key.clone()));
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
                    staged.ops.push(StagedOp::DeleteRange(start, end));
                }
            }
            CmdType::Cas => {
                let c = req.cas.as_ref().ok_or_else(|| CmdError::Other("cas without body".into()))?;
                self.check_key(&c.key)?;
                resp.cas = Some(apply_cas(ctx, wb, staged, c)?);
            }
            CmdType::TxnWrite => {
                let t = req.txn_write.as_ref().ok_or_else(|| CmdError::Other("txn write without body".into()))?;
                let modifies = crate::txn::wire::decode_modifies(t).map_err(CmdError::Other)?;
                for m in &modifies {
                    let user =
                        crate::txn::codec::user_key_of(m.cf(), m.key()).map_err(|e| CmdError::Other(e.to_string()))?;
                    self.check_key(&user)?;
                }
                ctx.engine.put_modifies(wb, &modifies).map_err(|e| CmdError::Other(e.to_string()))?;
            }
            CmdType::TxnCommand => {
                let t = req.txn_command.as_ref().ok_or_else(|| CmdError::Other("txn command without body".into()))?;
                let method = net::Method::from_i32(t.method as i32)
                    .filter(|&m| txn::proto::is_write(m))
                    .ok_or_else(|| CmdError::Other(format!("unknown transactional method {}", t.method)))?;
                let result = match txn::proto::command_of(method, &t.payload) {
                    Ok(cmd) => {
                        for k in cmd.keys() {
                            self.check_key(k)?;
                        }
                        apply_txn(ctx, wb, staged, &cmd)
                    }
                    Err(e) => Err(e),
                };
                resp.txn = txn::proto::response_payload(method, result).into();
            }
            CmdType::Invalid => return Err(CmdError::Other(format!("unknown command type {}", req.cmd_type))),
        }
        Ok(resp)
    }
}

/// Processes a transactional command against the state the batch has reached, and stages
/// its modifications.
fn apply_txn(
    ctx: &ShardCtx,
    wb: &mut WriteBatch,
    staged: &mut Staged,
    cmd: &txn::TxnCommand,
) -> Result<txn::TxnResponse, txn::TxnError> {
    let p = cmd.process(&ApplyView { engine: &ctx.engine, staged: &staged.txn })?;
    ctx.engine.put_modifies(wb, &p.modifies).map_err(|e| txn::TxnError::Engine(e.to_string()))?;
    for m in p.modifies {
        match m {
            txn::Modify::Put { cf, key, value } => staged.txn.insert((cf, key), Some(value)),
            txn::Modify::Delete { cf, key } => staged.txn.insert((cf, key), None),
        };
    }
    Ok(p.response)
}

/// Compare-and-swap: reads the current value (through the batch, so earlier entries are
/// visible) and writes if it matches.
fn apply_cas(
    ctx: &ShardCtx,
    wb: &mut WriteBatch,
    staged: &mut Staged,
    c: &raft_cmdpb::CasRequest,
) -> Result<raft_cmdpb::CasResponse, CmdError> {
    let current = match staged.lookup(&c.key) {
        Some(v) => v,
        None => ctx.engine.get(&keys::data_key(&c.key)).map_err(|e| CmdError::Other(e.to_string()))?.map(Bytes::from),
    };
    let matches = match &current {
        None => c.previous_not_exist,
        Some(v) => !c.previous_not_exist && v[..] == c.previous_value[..],
    };
    if matches {
        if c.delete {
            wb.delete(keys::data_key(&c.key));
            staged.ops.push(StagedOp::Delete(c.key.clone()));
        } else {
            wb.put(keys::data_key(&c.key), &c.value);
            staged.ops.push(StagedOp::Put(c.key.clone(), c.value.clone()));
        }
    }
    Ok(raft_cmdpb::CasResponse {
        succeed: matches,
        previous_not_exist: current.is_none(),
        previous_value: current.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_changes_are_read_newest_first() {
        let mut s = Staged::default();
        assert_eq!(s.lookup(b"k"), None);
        s.ops.push(StagedOp::Put("k".into(), "1".into()));
        assert_eq!(s.lookup(b"k"), Some(Some("1".into())));
        s.ops.push(StagedOp::DeleteRange("a".into(), "m".into()));
        assert_eq!(s.lookup(b"k"), Some(None), "a later range delete hides the put");
        assert_eq!(s.lookup(b"z"), None);
        s.ops.push(StagedOp::Put("k".into(), "2".into()));
        s.ops.push(StagedOp::Delete("z".into()));
        assert_eq!(s.lookup(b"k"), Some(Some("2".into())));
        assert_eq!(s.lookup(b"z"), Some(None));
        s.ops.push(StagedOp::DeleteRange("x".into(), Bytes::new()));
        assert_eq!(s.lookup(b"zz"), Some(None), "an empty end reaches the end of the key space");
    }
}
