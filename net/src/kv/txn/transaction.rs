//! A transaction: buffered writes, snapshot reads at its start timestamp that see its own
//! writes, and commit.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::resolve::{LockWait, Resolved};
use super::{CommitPhases, Result, TxnClient, TxnError};
use crate::kv::cache::CachedRegion;
use crate::kv::locate::Locate;
use crate::kv::range;
use crate::proto::kvrpcpb::{KeyError, KvGetRequest, KvScanRequest, LockInfo};

/// A transaction started at `start_ts`. Writes stay in memory until [`Transaction::commit`];
/// dropping it uncommitted writes nothing.
pub struct Transaction {
    pub(super) client: TxnClient,
    pub(super) start_ts: u64,
    /// Buffered writes: `Some(value)` put, `None` delete.
    pub(super) writes: BTreeMap<Bytes, Option<Bytes>>,
    /// Transactions whose locks this one reads past (they commit after `start_ts`).
    bypass: Vec<u64>,
}

/// What to do about a key error a read met.
enum Next {
    Retry,
    Fail(TxnError),
}

impl Transaction {
    pub(super) fn new(client: TxnClient, start_ts: u64) -> Self {
        Transaction { client, start_ts, writes: BTreeMap::new(), bypass: Vec::new() }
    }

    /// The start timestamp: the snapshot this transaction reads.
    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    /// Buffers a put.
    pub fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.writes.insert(key.into(), Some(value.into()));
    }

    /// Buffers a delete.
    pub fn delete(&mut self, key: impl Into<Bytes>) {
        self.writes.insert(key.into(), None);
    }

    /// Handles a key error met by a read: resolve the lock (or learn to read past it) or
    /// wait for it.
    async fn on_read_error(&mut self, e: KeyError, wait: &mut LockWait) -> Next {
        let Some(lock) = e.locked else {
            return Next::Fail(TxnError::Kv(crate::kv::KvError::Malformed { what: format!("read key error {e:?}") }));
        };
        match self.settle(&lock, wait).await {
            Ok(()) => Next::Retry,
            Err(e) => Next::Fail(e),
        }
    }

    async fn settle(&mut self, lock: &LockInfo, wait: &mut LockWait) -> Result<()> {
        match self.client.resolve_lock(lock, self.start_ts).await? {
            Resolved::Gone => Ok(()),
            Resolved::Bypass(ts) => {
                self.bypass.push(ts);
                Ok(())
            }
            Resolved::Wait => wait.wait(&lock.key, lock.lock_version).await,
        }
    }

    /// The value of `key` in this transaction: its own write, else the snapshot at
    /// `start_ts`.
    pub async fn get(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>> {
        let key = key.into();
        if let Some(w) = self.writes.get(&key) {
            return Ok(w.clone());
        }
        let mut wait = LockWait::new(&self.client);
        loop {
            let req = KvGetRequest {
                context: None,
                key: key.clone(),
                version: self.start_ts,
                resolved_locks: self.bypass.clone(),
            };
            let kv = self.client.kv.clone();
            let (_, resp) = kv.run(&mut kv.backoffer(), Locate::Key(&key), |_| req.clone()).await?;
            match resp.key_error {
                None => return Ok((!resp.not_found).then_some(resp.value)),
                Some(e) => match self.on_read_error(e, &mut wait).await {
                    Next::Retry => continue,
                    Next::Fail(e) => return Err(e),
                },
            }
        }
    }

    /// Pairs with keys in `[start, end)` (empty `end`: no end), ascending, at most `limit`
    /// (0: no limit), as this transaction sees them (its own writes included).
    pub async fn scan(
        &mut self,
        start: impl Into<Bytes>,
        end: impl Into<Bytes>,
        limit: u32,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let (start, end) = (start.into(), end.into());
        let stored = self.scan_stored(&start, &end).await?;
        let mut merged: BTreeMap<Bytes, Bytes> = stored.into_iter().collect();
        let in_range = |k: &Bytes| k >= &start && (end.is_empty() || k < &end);
        for (k, w) in self.writes.iter().filter(|(k, _)| in_range(k)) {
            match w {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        let limit = if limit == 0 { usize::MAX } else { limit as usize };
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Every stored pair of `[start, end)` at `start_ts`, region by region.
    async fn scan_stored(&mut self, start: &Bytes, end: &Bytes) -> Result<Vec<(Bytes, Bytes)>> {
        if !end.is_empty() && start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut from = start.clone();
        let mut wait = LockWait::new(&self.client);
        loop {
            let kv = self.client.kv.clone();
            let bypass = self.bypass.clone();
            let build = |loc: &CachedRegion| KvScanRequest {
                context: None,
                start_key: from.clone(),
                end_key: range::clip_end(&loc.region, end),
                limit: 0,
                version: self.start_ts,
                resolved_locks: bypass.clone(),
            };
            let (loc, resp) = kv.run(&mut kv.backoffer(), Locate::Forward { from: &from, end }, build).await?;
            if let Some(e) = resp.key_error {
                match self.on_read_error(e, &mut wait).await {
                    Next::Retry => continue,
                    Next::Fail(e) => return Err(e),
                }
            }
            out.extend(resp.pairs.into_iter().map(|p| (p.key, p.value)));
            match range::next_start(&loc.region, end) {
                Some(next) => from = next,
                None => return Ok(out),
            }
        }
    }

    /// Commits: nothing to do for a transaction that wrote nothing; otherwise two-phase
    /// commit. Returns the commit timestamp (the start timestamp for a read-only one).
    pub async fn commit(self) -> Result<u64> {
        self.commit_timed().await.map(|(ts, _)| ts)
    }

    /// [`Transaction::commit`], also saying how long each phase took.
    pub async fn commit_timed(self) -> Result<(u64, CommitPhases)> {
        let mut phases = CommitPhases::default();
        if self.writes.is_empty() {
            return Ok((self.start_ts, phases));
        }
        let ts = self.two_phase_commit(&mut phases).await?;
        Ok((ts, phases))
    }
}
