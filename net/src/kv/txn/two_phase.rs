//! Two-phase commit: prewrite every key (one request per region, regions in parallel; the
//! first key is the primary), take a commit timestamp, commit the primary — from then on the
//! transaction is committed, whatever happens to the client — then the secondaries. A
//! prewrite that meets another transaction's lock resolves it or waits; a conflict aborts:
//! the prewritten keys are rolled back and the caller gets a retryable error.
//!
//! **One-phase commit.** A prewrite request holding every key of the transaction (they are
//! all in one region) asks for it; the leader answers with the commit timestamp it chose, or
//! prewrites as usual (then the commit continues in two phases). A one-phase prewrite that
//! failed without an answer may have committed: the primary's status, checked with
//! rollback-if-not-exist, settles it (a rollback record there makes a late-arriving attempt
//! fail), and only if that check fails too is the outcome undetermined.

use std::cell::Cell;
use std::time::Instant;

use bytes::Bytes;

use super::resolve::{LockWait, Resolved};
use super::transaction::Transaction;
use super::{CommitPhases, Result, TxnError};
use crate::kv::error::KvError;
use crate::kv::locate::Locate;
use crate::proto::kvrpcpb::{
    KeyError, KvBatchRollbackRequest, KvCheckTxnStatusRequest, KvCommitRequest, KvPrewriteRequest, LockInfo, Mutation,
    Op, TxnAction,
};

fn mutation_key(m: &Mutation) -> &Bytes {
    &m.key
}

fn bytes_key(k: &Bytes) -> &Bytes {
    k
}

/// What a refused prewrite means for the transaction.
enum Refusal {
    /// Someone else's lock: resolve it and try again.
    Locked(LockInfo),
    /// The transaction cannot commit.
    Abort(TxnError),
}

fn refusal(start_ts: u64, e: KeyError) -> Refusal {
    if let Some(l) = e.locked {
        return Refusal::Locked(l);
    }
    if let Some(c) = e.conflict {
        return Refusal::Abort(TxnError::WriteConflict {
            key: c.key,
            start_ts,
            conflict_commit_ts: c.conflict_commit_ts,
        });
    }
    if let Some(a) = e.already_exist {
        return Refusal::Abort(TxnError::AlreadyExist { key: a.key });
    }
    Refusal::Abort(TxnError::Aborted { start_ts, reason: format!("prewrite refused: {e:?}") })
}

impl Transaction {
    pub(super) async fn two_phase_commit(self, phases: &mut CommitPhases) -> Result<u64> {
        let started = Instant::now();
        let mutations: Vec<Mutation> = self
            .writes
            .iter()
            .map(|(k, w)| match w {
                Some(v) => Mutation { op: Op::Put as i32, key: k.clone(), value: v.clone() },
                None => Mutation { op: Op::Delete as i32, key: k.clone(), value: Bytes::new() },
            })
            .collect();
        let keys: Vec<Bytes> = self.writes.keys().cloned().collect();
        let primary = keys[0].clone();
        let tried_one_pc = Cell::new(false);
        match self.prewrite(&primary, mutations, &tried_one_pc).await {
            Ok(Some(commit_ts)) => {
                phases.prewrite = started.elapsed();
                phases.one_pc = true;
                return Ok(commit_ts);
            }
            Ok(None) => {}
            Err(e @ TxnError::Kv(_)) if tried_one_pc.get() => {
                return match self.settle_one_pc(&primary, &e).await {
                    Ok(Some(commit_ts)) => {
                        phases.prewrite = started.elapsed();
                        phases.one_pc = true;
                        Ok(commit_ts)
                    }
                    Ok(None) => {
                        self.rollback(keys).await;
                        Err(e)
                    }
                    Err(undetermined) => Err(undetermined),
                };
            }
            Err(e) => {
                self.rollback(keys).await;
                return Err(e);
            }
        }
        let prewritten = Instant::now();
        phases.prewrite = prewritten - started;
        let commit_ts = match self.commit_primary(&primary).await {
            Ok(ts) => ts,
            Err(e) => {
                if matches!(e, TxnError::Aborted { .. }) {
                    self.rollback(keys).await;
                }
                return Err(e);
            }
        };
        let committed = Instant::now();
        phases.commit_primary = committed - prewritten;
        let secondaries = keys[1..].to_vec();
        if self.client.config.async_secondaries {
            glommio::spawn_local(async move { self.commit_secondaries(secondaries, commit_ts).await }).detach();
        } else {
            self.commit_secondaries(secondaries, commit_ts).await;
            phases.commit_secondaries = committed.elapsed();
        }
        Ok(commit_ts)
    }

    /// Prewrites every mutation; `Some(commit_ts)` when the transaction committed in one
    /// phase instead. `tried_one_pc` is set once a request asked for it.
    async fn prewrite(
        &self,
        primary: &Bytes,
        mutations: Vec<Mutation>,
        tried_one_pc: &Cell<bool>,
    ) -> Result<Option<u64>> {
        let kv = &self.client.kv;
        let mut wait = LockWait::new(&self.client);
        let total = mutations.len();
        let mut pending = mutations;
        loop {
            let build = |mutations: Vec<Mutation>| {
                // Every key in this one request: they are all in one region.
                let try_one_pc = self.client.config.one_pc && mutations.len() == total;
                if try_one_pc {
                    tried_one_pc.set(true);
                }
                KvPrewriteRequest {
                    context: None,
                    mutations,
                    primary_lock: primary.clone(),
                    start_version: self.start_ts,
                    lock_ttl: self.client.config.lock_ttl.as_millis() as u64,
                    min_commit_ts: self.start_ts + 1,
                    one_pc_commit_ts: 0,
                    try_one_pc,
                }
            };
            let answers = kv.run_groups(pending, mutation_key, build).await?;
            pending = Vec::new();
            let mut locks = Vec::new();
            for (items, resp) in answers {
                if !resp.error.is_empty() {
                    return Err(TxnError::Kv(KvError::Server { region_id: 0, message: resp.error }));
                }
                if resp.one_pc_commit_ts != 0 {
                    // Committed in one phase (one request held every key).
                    return Ok(Some(resp.one_pc_commit_ts));
                }
                if resp.errors.is_empty() {
                    continue;
                }
                for e in resp.errors {
                    match refusal(self.start_ts, e) {
                        Refusal::Locked(l) => locks.push(l),
                        Refusal::Abort(e) => return Err(e),
                    }
                }
                // Nothing of a refused region's request was written: send it all again.
                pending.extend(items);
            }
            if pending.is_empty() {
                return Ok(None);
            }
            let mut must_wait = None;
            for l in &locks {
                if self.client.resolve_lock(l, 0).await? == Resolved::Wait {
                    must_wait = Some((l.key.clone(), l.lock_version));
                }
            }
            if let Some((key, ts)) = must_wait {
                wait.wait(&key, ts).await?;
            }
        }
    }

    /// After a one-phase prewrite failed without an answer: whether it committed
    /// (`Some(commit_ts)`) or not (`None`; a rollback record on the primary now keeps it from
    /// committing later), or — when the check fails too — [`TxnError::Undetermined`].
    async fn settle_one_pc(&self, primary: &Bytes, failure: &TxnError) -> Result<Option<u64>> {
        let undetermined = |why: String| TxnError::Undetermined {
            start_ts: self.start_ts,
            commit_ts: 0,
            reason: format!("one-phase prewrite failed ({failure}), then its status check: {why}"),
        };
        let current_ts = self.client.timestamp().await.map_err(|e| undetermined(e.to_string()))?;
        let check = KvCheckTxnStatusRequest {
            context: None,
            primary_key: primary.clone(),
            lock_ts: self.start_ts,
            caller_start_ts: 0,
            current_ts,
            rollback_if_not_exist: true,
        };
        let kv = &self.client.kv;
        let st = match kv.run(&mut kv.backoffer(), Locate::Key(primary), |_| check.clone()).await {
            Ok((_, st)) if st.error.is_empty() => st,
            Ok((_, st)) => return Err(undetermined(st.error)),
            Err(e) => return Err(undetermined(e.to_string())),
        };
        match TxnAction::from_i32(st.action) {
            Some(TxnAction::Committed) if st.key_error.is_none() => Ok(Some(st.commit_version)),
            // Rolled back now or before, or prewritten as locks (never committed: no commit
            // was sent): not committed.
            Some(_) if st.key_error.is_none() => Ok(None),
            _ => Err(undetermined(format!("{:?}", st.key_error))),
        }
    }

    /// Commits the primary at a new timestamp (again at a newer one if a reader pushed the
    /// lock's `min_commit_ts` past it).
    async fn commit_primary(&self, primary: &Bytes) -> Result<u64> {
        let kv = &self.client.kv;
        loop {
            let commit_ts = self.client.timestamp().await?;
            let req = KvCommitRequest {
                context: None,
                keys: vec![primary.clone()],
                start_version: self.start_ts,
                commit_version: commit_ts,
            };
            // Once the commit was sent, a failure leaves its outcome unknown: an earlier
            // attempt of the routing client's retries may have applied.
            let resp = match kv.run(&mut kv.backoffer(), Locate::Key(primary), |_| req.clone()).await {
                Ok((_, resp)) => resp,
                Err(e) => {
                    return Err(TxnError::Undetermined { start_ts: self.start_ts, commit_ts, reason: e.to_string() })
                }
            };
            if !resp.error.is_empty() {
                return Err(TxnError::Kv(KvError::Server { region_id: 0, message: resp.error }));
            }
            match resp.key_error {
                None => return Ok(commit_ts),
                Some(e) if e.commit_ts_expired.is_some() => continue,
                Some(e) => {
                    return Err(TxnError::Aborted { start_ts: self.start_ts, reason: format!("commit refused: {e:?}") })
                }
            }
        }
    }

    /// Commits the secondaries. The transaction is committed already: a failure here only
    /// leaves locks that readers resolve as committed.
    async fn commit_secondaries(&self, keys: Vec<Bytes>, commit_ts: u64) {
        if keys.is_empty() {
            return;
        }
        let build = |keys: Vec<Bytes>| KvCommitRequest {
            context: None,
            keys,
            start_version: self.start_ts,
            commit_version: commit_ts,
        };
        match self.client.kv.run_groups(keys, bytes_key, build).await {
            Ok(answers) => {
                for (_, r) in answers.iter().filter(|(_, r)| r.key_error.is_some() || !r.error.is_empty()) {
                    tracing::debug!(start_ts = self.start_ts, "secondary commit refused: {r:?}");
                }
            }
            Err(e) => tracing::debug!(start_ts = self.start_ts, "secondary commit failed: {e}"),
        }
    }

    /// Rolls the transaction back on its keys (best effort: locks left behind expire and are
    /// rolled back by readers).
    async fn rollback(&self, keys: Vec<Bytes>) {
        let build = |keys: Vec<Bytes>| KvBatchRollbackRequest { context: None, keys, start_version: self.start_ts };
        if let Err(e) = self.client.kv.run_groups(keys, bytes_key, build).await {
            tracing::debug!(start_ts = self.start_ts, "rollback failed: {e}");
        }
    }
}
