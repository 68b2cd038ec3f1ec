//! MVCC garbage collection, in the background at a bounded rate.
//!
//! *Scan* (tick work, every `gc.interval-ms`): the shard reads PD's GC safe point; each
//! leader walks its region's transactional keys from where its last pass stopped, at most
//! `gc.batch-keys` keys per pass, and on a snapshot (the blocking pool) keeps the keys whose
//! versions no read at or after the safe point can see — running the pure GC action and
//! keeping the keys it would change. *Propose*: those keys as one `KvGc` transactional
//! command, applied on every replica like any other (`operation/write.rs`). A pass that
//! reaches the region's end starts over at its start next time. Locks are not GC's business:
//! a lock left by a dead transaction is resolved by the next reader or writer that meets it,
//! and `percore-ctl gc` resolves the ones below the safe point before raising it.

use std::sync::atomic::Ordering;

use net::proto::kvrpcpb::KvGcRequest;
use net::proto::metapb::RegionEpoch;
use net::proto::raft_cmdpb::{self, CmdType, TxnCommandRequest};
use net::Method;
use prost::Message;

use crate::engine::OwnedSnapshot;
use crate::msg::Event;
use crate::peer::Work;
use crate::shard::Shard;
use crate::txn::{self, MvccReader, MvccTxn};

/// The keys of a pass that GC would change, and where the next pass starts (`None`: the
/// region's end was reached).
type GcPass = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Up to `limit` keys of `[from, end)` with write records; of those, the ones GC at
/// `safe_point` would change, and where the next pass starts.
fn scan_batch(snap: &OwnedSnapshot, from: &[u8], end: &[u8], limit: usize, safe_point: u64) -> txn::Result<GcPass> {
    let reader = MvccReader::new(snap);
    let keys = reader.keys_with_writes(from, end, limit)?;
    let next = match keys.last() {
        Some(last) if keys.len() == limit => Some([last.as_slice(), &[0]].concat()),
        _ => None,
    };
    let mut collectable = Vec::new();
    for k in keys {
        let mut scratch = MvccTxn::new(0);
        txn::actions::gc(&mut scratch, &reader, &k, safe_point)?;
        if !scratch.is_empty() {
            collectable.push(k);
        }
    }
    Ok((collectable, next))
}

impl Shard {
    /// *Scan*: every leader GCs the next batch of its region's keys against PD's safe point.
    pub(crate) fn run_gc(&mut self) {
        let batch = self.ctx.cfg.gc.batch_keys;
        let mut work = Vec::new();
        for p in self.peers.values() {
            if !p.is_leader() || !p.allows(Work::Write) || !p.is_initialized() {
                continue;
            }
            let region = p.region().clone();
            let from = self.gc_cursors.get(&region.id).cloned().unwrap_or_else(|| region.start_key.to_vec());
            work.push((region, p.epoch(), from));
        }
        if work.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        let task = async move {
            let safe_point = match ctx.pd.get_gc_safe_point().await {
                Ok(0) => return,
                Ok(sp) => sp,
                Err(e) => {
                    tracing::debug!("GC: cannot read the safe point: {e}");
                    return;
                }
            };
            for (region, epoch, from) in work {
                let Ok(snap) = ctx.engine.snapshot() else { return };
                let end = region.end_key.to_vec();
                let scanned =
                    glommio::executor().spawn_blocking(move || scan_batch(&snap, &from, &end, batch, safe_point)).await;
                match scanned {
                    Ok((keys, next)) => {
                        ctx.push(Event::GcBatch { region_id: region.id, epoch, safe_point, keys, next });
                    }
                    Err(e) => tracing::warn!(region_id = region.id, "GC scan failed: {e}"),
                }
            }
        };
        if let Ok(t) = glommio::spawn_local_into(task, self.ctx.queues.background) {
            t.detach();
        }
    }

    /// *Propose*: a GC pass found keys to collect (or none); the walk moves on.
    pub(crate) fn on_gc_batch(
        &mut self,
        region_id: u64,
        epoch: RegionEpoch,
        safe_point: u64,
        keys: Vec<Vec<u8>>,
        next: Option<Vec<u8>>,
    ) {
        match next {
            Some(n) => self.gc_cursors.insert(region_id, n),
            None => self.gc_cursors.remove(&region_id),
        };
        self.ctx.shared.gc_safe_point.fetch_max(safe_point, Ordering::Relaxed);
        if keys.is_empty() {
            return;
        }
        let Some(p) = self.peers.get_mut(&region_id) else { return };
        let body = KvGcRequest { context: None, safe_point, keys: keys.into_iter().map(Into::into).collect() };
        let req = raft_cmdpb::Request {
            cmd_type: CmdType::TxnCommand as i32,
            txn_command: Some(TxnCommandRequest { method: Method::KvGc as u32, payload: body.encode_to_vec().into() }),
            ..Default::default()
        };
        let (tx, rx) = core_shard::oneshot::channel();
        if p.propose_write(&epoch, vec![req], tx).is_none() {
            return; // refused (no longer leader, epoch changed): the next pass tries again
        }
        self.touched.insert(region_id);
        let shared = self.ctx.shared.clone();
        glommio::spawn_local(async move {
            let Ok(Ok(mut resp)) = rx.await else { return };
            let body = resp.responses.pop().map(|r| r.txn).unwrap_or_default();
            if let Ok(r) = net::proto::kvrpcpb::KvGcResponse::decode(body) {
                shared.gc_versions_removed.fetch_add(r.writes_removed, Ordering::Relaxed);
            }
        })
        .detach();
    }
}
