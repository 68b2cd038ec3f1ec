//! Linearizable reads: the leader serves reads locally while its lease holds, through
//! ReadIndex otherwise — never through the log.
//!
//! **Lease.** When a quorum confirms the leader — a read index returns, or an entry proposed
//! at time `t` commits — the leader knows no other leader can have been elected before
//! `t + election timeout`. It serves reads locally until `t + lease` (lease < election
//! timeout, so clock-rate drift within that margin is tolerated). Leadership transfer expires
//! the lease at once.
//!
//! **ReadIndex.** Otherwise the read waits for raft's read index (a heartbeat round that
//! proves leadership) and for the apply index to reach it. raft-rs silently drops a read
//! index request while the leader has not committed an entry of its own term (a new leader,
//! a region fresh from a split): such a read is held here and asked for once that entry
//! commits — asking earlier left the read unanswered until the client gave up, the 10-second
//! stalls of `make run` right after a split. A read whose read index has not come back after
//! a few heartbeats is asked again (raft-rs sends the heartbeat carrying its context anew),
//! so a lost heartbeat or response costs a retry, not the read.
//!
//! In both cases the leader must have applied an entry of its own term first, so that it
//! has applied everything committed by earlier leaders. Nothing more is needed: every write
//! acknowledged to a client was applied here before its answer left, so a read of the local
//! state machine sees it (a committed entry not yet applied belongs to a write still in
//! flight, which the read may or may not see).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use core_shard::oneshot;
use net::proto::metapb::Region;
use prost::Message;

use super::Peer;
use crate::cmd::{CmdError, ReadRequest, ReadResult, TxnRead};
use crate::ctx::ShardCtx;
use crate::engine::OwnedSnapshot;
use crate::keys;
use crate::region_error;
use crate::tracker::{Stage, Ticket};
use crate::txn;

/// The leader lease.
#[derive(Debug)]
pub struct Lease {
    duration: Duration,
    expires: Option<Instant>,
    /// When it was last ended: confirmations of what happened before that (a proposal or a
    /// read index sent earlier, answered later) no longer renew it.
    ended: Option<Instant>,
}

impl Lease {
    /// A lease of `duration`, not yet valid.
    pub fn new(duration: Duration) -> Self {
        Lease { duration, expires: None, ended: None }
    }

    /// A quorum confirmed leadership as of `at`.
    pub fn renew(&mut self, at: Instant) {
        if self.ended.is_some_and(|ended| at <= ended) {
            return;
        }
        let until = at + self.duration;
        if self.expires.is_none_or(|e| until > e) {
            self.expires = Some(until);
        }
    }

    /// Ends the lease now. A leadership transfer calls this when it starts: the target may be
    /// elected at once (`TimeoutNow` skips the election timeout the lease relies on), so no
    /// confirmation of anything before this instant may revive the lease.
    pub fn expire(&mut self) {
        self.expires = None;
        self.ended = Some(Instant::now());
    }

    /// Whether the lease holds at `now`.
    pub fn valid(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| now < e)
    }
}

struct Waiting {
    id: u64,
    /// The read index, once raft confirmed leadership.
    index: Option<u64>,
    /// When the read index was last asked of raft (`None`: not yet, the leader has not
    /// committed an entry of its term).
    asked: Option<Instant>,
    at: Instant,
    /// The region's version when the read's keys were checked against it.
    version: u64,
    req: ReadRequest,
    reply: oneshot::Sender<ReadResult>,
    ticket: Option<Ticket>,
}

/// Reads waiting for their read index, then for apply.
#[derive(Default)]
pub struct PendingReads {
    queue: VecDeque<Waiting>,
    next_id: u64,
}

impl PendingReads {
    /// Fails every waiting read.
    pub fn fail_all(&mut self, err: &dyn Fn() -> CmdError) {
        for w in self.queue.drain(..) {
            w.reply.send(Err(err()));
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Checks that the keys of a read are inside the region.
fn check_keys(req: &ReadRequest, region: &Region) -> Result<(), CmdError> {
    let check = |k: &[u8]| {
        if keys::in_range(k, &region.start_key, &region.end_key) {
            Ok(())
        } else {
            Err(region_error::key_not_in_region(k, region))
        }
    };
    let check_range = |start: &[u8], end: &[u8]| {
        check(start)?;
        let end_ok = region.end_key.is_empty() || (!end.is_empty() && end[..] <= region.end_key[..]);
        if end_ok {
            Ok(())
        } else {
            Err(region_error::key_not_in_region(end, region))
        }
    };
    match req {
        ReadRequest::Get { key }
        | ReadRequest::Txn(TxnRead::Get { key, .. })
        | ReadRequest::Txn(TxnRead::Mvcc { key }) => check(key),
        ReadRequest::BatchGet { keys } | ReadRequest::Txn(TxnRead::BatchGet { keys, .. }) => {
            keys.iter().try_for_each(|k| check(k))
        }
        ReadRequest::Scan { start, end, .. }
        | ReadRequest::Txn(TxnRead::Scan { start, end, .. })
        | ReadRequest::Txn(TxnRead::ScanLock { start, end, .. }) => {
            // An empty end means the region's end.
            let end: &[u8] = if end.is_empty() { &region.end_key } else { end };
            if end.is_empty() {
                return check(start);
            }
            check_range(start, end)
        }
    }
}

/// Runs a read against the shard's RocksDB and answers it: from memory at once when the
/// data is in the memtable or block cache, otherwise on the blocking pool (the executor never
/// waits for the disk). Deferring is still linearizable: the state read then contains every
/// write acknowledged before the read began.
pub fn serve(
    ctx: &Rc<ShardCtx>,
    region: &Region,
    req: ReadRequest,
    reply: oneshot::Sender<ReadResult>,
    ticket: Option<Ticket>,
) {
    match execute_cached(ctx, region, &req) {
        Ok(Some(r)) => reply.send(Ok(r)),
        Err(e) => reply.send(Err(e)),
        Ok(None) => {
            let Ok(snap) = ctx.engine.snapshot() else {
                return reply.send(Err(region_error::server_is_busy("the store is shutting down", 100)));
            };
            ctx.set_stage(ticket, Stage::Deferred);
            let region = region.clone();
            glommio::spawn_local(async move {
                let r = glommio::executor().spawn_blocking(move || execute_blocking(&snap, &region, &req)).await;
                reply.send(r);
            })
            .detach();
        }
    }
}

/// Pairs a read found (`None` value: the key does not exist).
type Pairs = Vec<(Bytes, Option<Bytes>)>;

fn db_err(e: crate::error::StoreError) -> CmdError {
    CmdError::Other(e.to_string())
}

/// The read from memory; `Ok(None)` if some data is only on disk.
fn execute_cached(ctx: &ShardCtx, region: &Region, req: &ReadRequest) -> Result<Option<Pairs>, CmdError> {
    match req {
        ReadRequest::Get { key } => Ok(ctx.engine.get_cached(key).map_err(db_err)?.map(|v| vec![(key.clone(), v)])),
        ReadRequest::BatchGet { keys: ks } => {
            let mut out = Vec::with_capacity(ks.len());
            for k in ks {
                match ctx.engine.get_cached(k).map_err(db_err)? {
                    Some(v) => out.push((k.clone(), v)),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        }
        ReadRequest::Scan { start, end, limit, reverse, key_only } => {
            let end: &[u8] = if end.is_empty() { &region.end_key } else { end };
            let mut out = Vec::new();
            let complete = ctx
                .engine
                .scan_cached(start, end, *reverse, |k, v| collect(&mut out, k, v, *limit, *key_only))
                .map_err(db_err)?;
            Ok(complete.then_some(out))
        }
        // Transactional reads go to the blocking pool, on a snapshot.
        ReadRequest::Txn(_) => Ok(None),
    }
}

fn collect(out: &mut Pairs, k: &[u8], v: &[u8], limit: u32, key_only: bool) -> bool {
    let value = if key_only { Bytes::new() } else { Bytes::copy_from_slice(v) };
    out.push((Bytes::copy_from_slice(k), Some(value)));
    limit == 0 || out.len() < limit as usize
}

/// The read on the blocking pool, from a consistent snapshot.
fn execute_blocking(snap: &OwnedSnapshot, region: &Region, req: &ReadRequest) -> ReadResult {
    let get = |k: &Bytes| -> Result<Option<Bytes>, CmdError> {
        let mut found = None;
        let dk = k.clone();
        snap.scan(&dk, &[], |key, v| {
            if key == &dk[..] {
                found = Some(Bytes::copy_from_slice(v));
            }
            false
        })
        .map_err(db_err)?;
        Ok(found)
    };
    match req {
        ReadRequest::Get { key } => Ok(vec![(key.clone(), get(key)?)]),
        ReadRequest::BatchGet { keys } => keys.iter().map(|k| Ok((k.clone(), get(k)?))).collect(),
        ReadRequest::Scan { start, end, limit, reverse, key_only } => {
            let end: &[u8] = if end.is_empty() { &region.end_key } else { end };
            let mut out = Vec::new();
            snap.scan_dir(start, end, *reverse, |k, v| collect(&mut out, k, v, *limit, *key_only)).map_err(db_err)?;
            Ok(out)
        }
        ReadRequest::Txn(t) => execute_txn(snap, region, t),
    }
}

fn txn_err(e: txn::TxnError) -> CmdError {
    match e {
        txn::TxnError::Key(k) => CmdError::Key(Box::new(k)),
        other => CmdError::Other(other.to_string()),
    }
}

/// A transactional read on a snapshot.
fn execute_txn(snap: &OwnedSnapshot, region: &Region, t: &TxnRead) -> ReadResult {
    let reader = txn::MvccReader::new(snap);
    let limit = |l: u32| if l == 0 { usize::MAX } else { l as usize };
    let end = |e: &Bytes| -> Bytes {
        if e.is_empty() {
            region.end_key.clone()
        } else {
            e.clone()
        }
    };
    match t {
        TxnRead::Get { key, ts, bypass } => {
            let v = txn::actions::get(&reader, key, *ts, bypass).map_err(txn_err)?;
            Ok(vec![(key.clone(), v.map(Bytes::from))])
        }
        TxnRead::BatchGet { keys, ts, bypass } => keys
            .iter()
            .map(|k| Ok((k.clone(), txn::actions::get(&reader, k, *ts, bypass).map_err(txn_err)?.map(Bytes::from))))
            .collect(),
        TxnRead::Scan { start, end: e, limit: l, ts, bypass } => {
            let pairs = txn::actions::scan(&reader, start, &end(e), limit(*l), *ts, bypass).map_err(txn_err)?;
            Ok(pairs.into_iter().map(|(k, v)| (Bytes::from(k), Some(Bytes::from(v)))).collect())
        }
        TxnRead::ScanLock { start, end: e, limit: l, max_ts } => {
            let locks =
                reader.scan_locks(start, &end(e), limit(*l), |lock| lock.start_ts <= *max_ts).map_err(txn_err)?;
            Ok(locks.into_iter().map(|(k, lock)| (Bytes::from(k), Some(Bytes::from(lock.encode())))).collect())
        }
        TxnRead::Mvcc { key } => {
            let info = txn::actions::mvcc(&reader, key).map_err(txn_err)?;
            Ok(vec![(key.clone(), Some(Bytes::from(txn::proto::mvcc_response(key, &info).encode_to_vec())))])
        }
    }
}

impl Peer {
    /// Serves a read the peer may serve now; a transactional read is first checked against
    /// the one-phase commits in flight (and its timestamp recorded).
    fn serve_now(
        &mut self,
        ctx: &Rc<ShardCtx>,
        req: ReadRequest,
        reply: oneshot::Sender<ReadResult>,
        ticket: Option<Ticket>,
    ) {
        if let ReadRequest::Txn(t) = &req {
            if let Err(e) = self.one_pc.before_read(t, &self.raw_node.store().region().end_key) {
                return reply.send(Err(e));
            }
        }
        serve(ctx, self.region(), req, reply, ticket);
    }

    /// Whether the leader has applied an entry of its own term (so everything committed
    /// before it is applied).
    fn applied_own_term(&self) -> bool {
        let raft = &self.raw_node.raft;
        let applied = self.raw_node.store().applied_index();
        raft.raft_log.term(applied).is_ok_and(|t| t == raft.term)
    }

    /// Serves a read: at once under a valid lease, otherwise after a read index.
    pub fn read(
        &mut self,
        ctx: &Rc<ShardCtx>,
        req: ReadRequest,
        reply: oneshot::Sender<ReadResult>,
        ticket: Option<Ticket>,
    ) {
        if !self.is_leader() {
            reply.send(Err(region_error::not_leader(self.region_id(), self.leader())));
            return;
        }
        if let Err(e) = check_keys(&req, self.region()) {
            reply.send(Err(e));
            return;
        }
        let now = Instant::now();
        if self.lease.valid(now) && self.applied_own_term() {
            self.serve_now(ctx, req, reply, ticket);
            return;
        }
        let id = self.reads.next_id;
        self.reads.next_id += 1;
        let version = self.epoch().version;
        let mut w = Waiting { id, index: None, asked: None, at: now, version, req, reply, ticket };
        ctx.set_stage(ticket, Stage::ReadIndex);
        if self.raw_node.raft.commit_to_current_term() {
            self.raw_node.read_index(id.to_le_bytes().to_vec());
            w.asked = Some(now);
        }
        self.reads.queue.push_back(w);
    }

    /// Handles the read states of a ready: the reads they confirm may run once applied.
    pub fn on_read_states(&mut self, ctx: &Rc<ShardCtx>, states: Vec<raft::ReadState>) {
        for rs in states {
            let Ok(bytes) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) else { continue };
            let id = u64::from_le_bytes(bytes);
            if let Some(w) = self.reads.queue.iter_mut().find(|w| w.id == id) {
                w.index = Some(rs.index);
                ctx.set_stage(w.ticket, Stage::Apply { index: rs.index });
                let at = w.at;
                self.renew_lease(at);
            }
        }
        self.run_ready_reads(ctx);
    }

    /// Runs confirmed reads whose index is applied, in order, and asks for the read index of
    /// reads held until the leader committed an entry of its term.
    ///
    /// A read whose region split while it waited is answered `EpochNotMatch` instead: its
    /// range was checked against the region before the split, and the part that went to the
    /// new region may no longer be on this shard (a split's new region is often handed over
    /// to another shard at once) — serving it here returned a scan silently missing that part.
    pub fn run_ready_reads(&mut self, ctx: &Rc<ShardCtx>) {
        let applied = self.raw_node.store().applied_index();
        let version = self.epoch().version;
        let own_term = self.applied_own_term();
        let can_ask = self.raw_node.raft.commit_to_current_term();
        let now = Instant::now();
        let mut keep = VecDeque::new();
        while let Some(mut w) = self.reads.queue.pop_front() {
            match w.index {
                Some(i) if i <= applied && own_term => {
                    if w.version == version {
                        self.serve_now(ctx, w.req, w.reply, w.ticket);
                    } else {
                        w.reply.send(Err(region_error::epoch_not_match(
                            format!("region {} split while the read waited for its read index", self.region_id()),
                            vec![self.region().clone()],
                        )));
                    }
                }
                None if w.asked.is_none() && can_ask => {
                    self.raw_node.read_index(w.id.to_le_bytes().to_vec());
                    w.asked = Some(now);
                    keep.push_back(w);
                }
                _ => keep.push_back(w),
            }
        }
        self.reads.queue = keep;
    }

    /// Tick work for waiting reads: forgets those whose caller gave up (the request bound
    /// answered them), and asks raft again for the read index of those that waited for it
    /// longer than `retry_after`. Returns whether raft was asked (the peer has a ready).
    pub fn retry_reads(&mut self, now: Instant, retry_after: Duration) -> bool {
        if self.reads.queue.is_empty() {
            return false;
        }
        self.reads.queue.retain(|w| w.reply.is_connected());
        if !self.is_leader() || !self.raw_node.raft.commit_to_current_term() {
            return false;
        }
        let mut asked = false;
        for w in self.reads.queue.iter_mut() {
            if w.index.is_none() && w.asked.is_none_or(|t| now.saturating_duration_since(t) >= retry_after) {
                self.raw_node.read_index(w.id.to_le_bytes().to_vec());
                w.asked = Some(now);
                asked = true;
            }
        }
        asked
    }

    /// A quorum confirmed this leader as of `at`: the lease runs from there — unless a
    /// leadership transfer is under way, whose target may already have been elected.
    pub fn renew_lease(&mut self, at: Instant) {
        if self.raw_node.raft.lead_transferee.is_none() {
            self.lease.renew(at);
        }
    }

    /// Drops reads that can no longer complete here (leadership lost). Proposals stay: their
    /// entries may still commit under the new leader, and answering "not leader" for a write
    /// that then applies would make the client retry it. They are answered when their index
    /// applies — with the result if the entry is theirs, `StaleCommand` if it was replaced.
    pub fn on_leadership_lost(&mut self) {
        let region_id = self.region_id();
        let leader = self.leader();
        self.lease.expire();
        self.reads.fail_all(&|| region_error::not_leader(region_id, leader.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_ended_by_a_transfer_is_not_revived_by_older_confirmations() {
        let mut lease = Lease::new(Duration::from_secs(60));
        let proposed = Instant::now();
        lease.renew(proposed);
        assert!(lease.valid(Instant::now()));
        lease.expire();
        assert!(!lease.valid(Instant::now()));
        // The entry proposed before the transfer commits afterwards: no renewal.
        lease.renew(proposed);
        assert!(!lease.valid(Instant::now()), "a confirmation from before the end revived the lease");
        // Leadership confirmed after the end (the transfer was aborted): renewed.
        std::thread::sleep(Duration::from_millis(1));
        lease.renew(Instant::now());
        assert!(lease.valid(Instant::now()));
    }
}
