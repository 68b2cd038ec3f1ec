//! One-phase commit on a region's leader: the leader picks the commit timestamp itself, so
//! it must pick one after every transactional read any leader of the region served, and no
//! read at or after it may be served before the commit applies.
//!
//! * **Max read ts.** Every transactional read the peer serves raises `max_read_ts` to its
//!   timestamp (a read at `u64::MAX`, "the latest", is not a TSO timestamp and is left out).
//!   A one-phase commit gets `max(start_ts, min_commit_ts - 1, max_read_ts) + 1`: after every
//!   read served, and — as every timestamp here came from the TSO — not after any timestamp
//!   the TSO hands out later, so a transaction begun after the commit was acknowledged sees
//!   it.
//! * **Synced per term.** Reads served by earlier leaders (another store, another shard
//!   before a handover, the parent region before a split) are not in `max_read_ts`. So a new
//!   leader fetches a timestamp from the TSO and folds it in first; it was issued after every
//!   read an earlier leader served (their leases ended before this leader was elected).
//!   Until then, and whenever the fetch fails, a request that asks for one-phase commit is
//!   prewritten as usual and the client commits it in two phases.
//! * **In flight.** From its proposal until its entry applies, a one-phase commit's keys and
//!   timestamp are held here. A transactional read at or after that timestamp of one of
//!   those keys is answered `ServerIsBusy` with a 1 ms backoff (the client retries): served
//!   now, it would miss a commit that is ordered before it. Earlier reads are unaffected.
//!   Entries leave when their index applies, whatever the entry turned out to be. A peer
//!   that loses leadership keeps them: it serves no read until it has applied an entry of a
//!   later own term, by which time they have left.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use net::proto::kvrpcpb::KvPrewriteRequest;
use net::proto::raft_cmdpb::{CmdType, Request};
use net::Method;
use prost::Message;

use super::Peer;
use crate::cmd::{CmdError, TxnRead};
use crate::region_error;

/// A leader's one-phase commit state (see the module documentation).
#[derive(Debug, Default)]
pub struct OnePc {
    max_read_ts: u64,
    /// The term whose `max_read_ts` includes a TSO timestamp fetched in it.
    synced_term: Option<u64>,
    /// The term a TSO fetch is under way for.
    fetching: Option<u64>,
    /// `(key, index)` → commit timestamp, of the one-phase commits proposed and not applied.
    in_flight: BTreeMap<(Vec<u8>, u64), u64>,
    /// `(index, keys)` of those proposals, in index order.
    by_index: VecDeque<(u64, Vec<Vec<u8>>)>,
}

/// A one-phase commit chosen for a proposal, registered once raft took it.
#[derive(Debug)]
pub struct Chosen {
    keys: Vec<Vec<u8>>,
    commit_ts: u64,
}

impl OnePc {
    /// Whether a TSO fetch should start for `term` (the peer leads in it and is not synced).
    pub fn wants_sync(&self, term: u64) -> bool {
        self.synced_term != Some(term) && self.fetching != Some(term)
    }

    /// A TSO fetch for `term` started.
    pub fn fetch_started(&mut self, term: u64) {
        self.fetching = Some(term);
    }

    /// The TSO fetch for `term` ended with `ts` (`None`: it failed, try again later); the
    /// peer still leads in `current_term`.
    pub fn fetch_done(&mut self, term: u64, ts: Option<u64>, current_term: u64) {
        if self.fetching == Some(term) {
            self.fetching = None;
        }
        if let Some(ts) = ts.filter(|_| term == current_term) {
            self.max_read_ts = self.max_read_ts.max(ts);
            self.synced_term = Some(term);
        }
    }

    /// Checks a transactional read against the one-phase commits in flight and records its
    /// timestamp. Called right before the read takes its snapshot.
    pub fn before_read(&mut self, read: &TxnRead, region_end: &[u8]) -> Result<(), CmdError> {
        let (ts, blocked) = match read {
            TxnRead::Get { key, ts, .. } => (*ts, self.blocks_key(key, *ts)),
            TxnRead::BatchGet { keys, ts, .. } => (*ts, keys.iter().any(|k| self.blocks_key(k, *ts))),
            TxnRead::Scan { start, end, ts, .. } => {
                let end: &[u8] = if end.is_empty() { region_end } else { end };
                (*ts, self.blocks_range(start, end, *ts))
            }
            // Locks: one-phase commits leave none. The MVCC dump reads at no timestamp.
            TxnRead::ScanLock { .. } | TxnRead::Mvcc { .. } => return Ok(()),
        };
        if blocked {
            return Err(region_error::server_is_busy("a one-phase commit of a key read is applying", 1));
        }
        if ts != u64::MAX {
            self.max_read_ts = self.max_read_ts.max(ts);
        }
        Ok(())
    }

    fn blocks_key(&self, key: &[u8], ts: u64) -> bool {
        if self.by_index.is_empty() {
            return false;
        }
        let from = Bound::Included((key.to_vec(), 0));
        let to = Bound::Included((key.to_vec(), u64::MAX));
        self.in_flight.range((from, to)).any(|(_, &c)| c <= ts)
    }

    fn blocks_range(&self, start: &[u8], end: &[u8], ts: u64) -> bool {
        if self.by_index.is_empty() {
            return false;
        }
        let from = Bound::Included((start.to_vec(), 0));
        self.in_flight
            .range((from, Bound::Unbounded))
            .take_while(|((k, _), _)| end.is_empty() || k.as_slice() < end)
            .any(|(_, &c)| c <= ts)
    }

    /// Looks at the requests of a write about to be proposed in `term`: a client's
    /// `one_pc_commit_ts` is refused; a prewrite that asks for one-phase commit gets its
    /// timestamp when the peer is synced (otherwise it stays a plain prewrite).
    pub fn prepare(&self, term: u64, requests: &mut [Request]) -> Result<Option<Chosen>, CmdError> {
        let mut chosen = None;
        for r in requests.iter_mut() {
            if r.cmd_type != CmdType::TxnCommand as i32 {
                continue;
            }
            let Some(t) = r.txn_command.as_mut().filter(|t| t.method == Method::KvPrewrite as u32) else { continue };
            let Ok(mut p) = KvPrewriteRequest::decode(&t.payload[..]) else { continue }; // refused at apply
            if p.one_pc_commit_ts != 0 {
                return Err(CmdError::Other(
                    "one_pc_commit_ts is chosen by the region's leader: set try_one_pc instead".into(),
                ));
            }
            if !p.try_one_pc || self.synced_term != Some(term) || chosen.is_some() {
                continue;
            }
            let after = p.start_version.max(p.min_commit_ts.saturating_sub(1)).max(self.max_read_ts);
            let Some(commit_ts) = after.checked_add(1).filter(|&c| c < u64::MAX) else { continue };
            p.one_pc_commit_ts = commit_ts;
            let keys = p.mutations.iter().map(|m| m.key.to_vec()).collect();
            t.payload = Bytes::from(p.encode_to_vec());
            chosen = Some(Chosen { keys, commit_ts });
        }
        Ok(chosen)
    }

    /// Raft appended the chosen one-phase commit at `index`.
    pub fn proposed(&mut self, index: u64, chosen: Chosen) {
        for k in &chosen.keys {
            self.in_flight.insert((k.clone(), index), chosen.commit_ts);
        }
        self.by_index.push_back((index, chosen.keys));
    }

    /// Entries up to `index` applied (and are visible to reads).
    pub fn applied(&mut self, index: u64) {
        while self.by_index.front().is_some_and(|(i, _)| *i <= index) {
            let Some((i, keys)) = self.by_index.pop_front() else { break };
            for k in keys {
                self.in_flight.remove(&(k, i));
            }
        }
    }
}

impl Peer {
    /// Gives a prewrite that asks for one-phase commit its timestamp, if this leader can
    /// (see [`OnePc::prepare`]).
    pub fn prepare_one_pc(&self, requests: &mut [Request]) -> Result<Option<Chosen>, CmdError> {
        self.one_pc.prepare(self.raw_node.raft.term, requests)
    }

    /// The one-phase commit `chosen` was proposed at `index`.
    pub fn one_pc_proposed(&mut self, index: u64, chosen: Chosen) {
        self.one_pc.proposed(index, chosen);
    }

    /// The term to fetch a TSO timestamp for, if this leader has not synced its read
    /// timestamps in it yet and no fetch is under way (the fetch is then counted as started).
    pub fn start_max_ts_sync(&mut self) -> Option<u64> {
        let term = self.raw_node.raft.term;
        if !self.is_leader() || !self.one_pc.wants_sync(term) {
            return None;
        }
        self.one_pc.fetch_started(term);
        Some(term)
    }

    /// The TSO fetch for `term` ended (`None`: it failed; a later tick tries again).
    pub fn max_ts_synced(&mut self, term: u64, ts: Option<u64>) {
        let current = if self.is_leader() { self.raw_node.raft.term } else { 0 };
        self.one_pc.fetch_done(term, ts, current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::proto::kvrpcpb::Mutation;
    use net::proto::raft_cmdpb::TxnCommandRequest;

    fn prewrite(keys: &[&str], start: u64, try_one_pc: bool) -> Request {
        let p = KvPrewriteRequest {
            mutations: keys
                .iter()
                .map(|k| Mutation { key: Bytes::from(k.to_string()), ..Default::default() })
                .collect(),
            primary_lock: Bytes::from(keys[0].to_string()),
            start_version: start,
            min_commit_ts: start + 1,
            try_one_pc,
            ..Default::default()
        };
        Request {
            cmd_type: CmdType::TxnCommand as i32,
            txn_command: Some(TxnCommandRequest {
                method: Method::KvPrewrite as u32,
                payload: p.encode_to_vec().into(),
            }),
            ..Default::default()
        }
    }

    fn commit_ts_of(r: &Request) -> u64 {
        KvPrewriteRequest::decode(&r.txn_command.as_ref().unwrap().payload[..]).unwrap().one_pc_commit_ts
    }

    fn get(key: &str, ts: u64) -> TxnRead {
        TxnRead::Get { key: Bytes::from(key.to_string()), ts, bypass: vec![] }
    }

    #[test]
    fn no_one_phase_commit_before_the_term_is_synced() {
        let mut s = OnePc::default();
        let mut reqs = vec![prewrite(&["a"], 10, true)];
        assert!(s.prepare(3, &mut reqs).unwrap().is_none());
        assert_eq!(commit_ts_of(&reqs[0]), 0);
        assert!(s.wants_sync(3));
        s.fetch_started(3);
        assert!(!s.wants_sync(3));
        // A fetch that ends after the term changed does not sync the new term.
        s.fetch_done(3, Some(50), 4);
        assert!(s.wants_sync(4));
        assert!(s.prepare(4, &mut reqs).unwrap().is_none());
        s.fetch_done(4, Some(60), 4);
        assert!(!s.wants_sync(4));
        let chosen = s.prepare(4, &mut reqs).unwrap().unwrap();
        assert_eq!(chosen.commit_ts, 61, "after the synced TSO timestamp");
        assert_eq!(commit_ts_of(&reqs[0]), 61);
    }

    #[test]
    fn the_commit_ts_follows_every_read_and_the_start() {
        let mut s = OnePc::default();
        s.fetch_done(1, Some(5), 1);
        s.before_read(&get("x", 40), b"").unwrap();
        s.before_read(&get("y", u64::MAX), b"").unwrap();
        let mut reqs = vec![prewrite(&["a"], 10, true)];
        assert_eq!(s.prepare(1, &mut reqs).unwrap().unwrap().commit_ts, 41);
        let mut reqs = vec![prewrite(&["a"], 100, true)];
        assert_eq!(s.prepare(1, &mut reqs).unwrap().unwrap().commit_ts, 101);
        let mut plain = vec![prewrite(&["a"], 100, false)];
        assert!(s.prepare(1, &mut plain).unwrap().is_none());
    }

    #[test]
    fn a_clients_commit_ts_is_refused() {
        let s = OnePc::default();
        let mut r = prewrite(&["a"], 10, false);
        let mut p = KvPrewriteRequest::decode(&r.txn_command.as_ref().unwrap().payload[..]).unwrap();
        p.one_pc_commit_ts = 11;
        r.txn_command.as_mut().unwrap().payload = p.encode_to_vec().into();
        assert!(s.prepare(1, &mut [r]).is_err());
    }

    #[test]
    fn reads_at_or_after_an_applying_commit_wait_for_it() {
        let mut s = OnePc::default();
        s.fetch_done(1, Some(5), 1);
        let mut reqs = vec![prewrite(&["b", "d"], 10, true)];
        let chosen = s.prepare(1, &mut reqs).unwrap().unwrap();
        assert_eq!(chosen.commit_ts, 11);
        s.proposed(7, chosen);
        assert!(s.before_read(&get("b", 11), b"").is_err());
        assert!(s.before_read(&get("d", 20), b"").is_err());
        s.before_read(&get("b", 10), b"").unwrap();
        s.before_read(&get("c", 20), b"").unwrap();
        let batch = TxnRead::BatchGet { keys: vec!["a".into(), "d".into()], ts: 12, bypass: vec![] };
        assert!(s.before_read(&batch, b"").is_err());
        let scan = |start: &str, end: &str| TxnRead::Scan {
            start: Bytes::from(start.to_string()),
            end: Bytes::from(end.to_string()),
            limit: 0,
            ts: 30,
            bypass: vec![],
        };
        assert!(s.before_read(&scan("a", "c"), b"").is_err());
        s.before_read(&scan("bb", "cz"), b"").unwrap();
        assert!(s.before_read(&scan("c", ""), b"").is_err(), "to the region's end");
        s.before_read(&scan("c", ""), b"d").unwrap();
        s.applied(6);
        assert!(s.before_read(&get("b", 11), b"").is_err());
        s.applied(7);
        s.before_read(&get("b", 11), b"").unwrap();
        s.before_read(&scan("a", ""), b"").unwrap();
    }
}
