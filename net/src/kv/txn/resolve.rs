//! Lock resolution: a read or a prewrite met another transaction's lock. The lock's primary
//! decides: committed → commit the lock; rolled back (or expired and rolled back now) → roll
//! it back; alive → a reader below its `min_commit_ts` reads past it, anyone else waits.

use std::time::Instant;

use bytes::Bytes;

use super::{Result, TxnClient, TxnError};
use crate::kv::backoff::{BackoffKind, Backoffer};
use crate::kv::locate::Locate;
use crate::proto::kvrpcpb::{KvCheckTxnStatusRequest, KvResolveLockRequest, KvScanLockRequest, LockInfo, TxnAction};

/// Bits of the logical part of a TSO timestamp (PD's layout: `physical_ms << 18 | logical`).
const LOGICAL_BITS: u32 = 18;

/// What became of a lock that was in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// It is gone (committed or rolled back): try again at once.
    Gone,
    /// Its transaction commits after the reader: read past locks of this start timestamp.
    Bypass(u64),
    /// Its transaction is alive: wait, then try again.
    Wait,
}

/// Waits for live locks within [`super::TxnConfig::lock_wait`].
pub(super) struct LockWait {
    bo: Backoffer,
}

impl LockWait {
    pub(super) fn new(client: &TxnClient) -> Self {
        LockWait { bo: Backoffer::new(client.config.lock_wait) }
    }

    /// Sleeps before the next try, or fails once the wait is over.
    pub(super) async fn wait(&mut self, key: &Bytes, lock_ts: u64) -> Result<()> {
        let reason = format!("key locked by transaction {lock_ts}");
        match self.bo.next(BackoffKind::ServerBusy, std::time::Duration::ZERO, false, reason, Instant::now()) {
            Ok(d) => {
                glommio::timer::sleep(d).await;
                Ok(())
            }
            Err(_) => Err(TxnError::LockWaitTimeout { key: key.clone(), lock_ts }),
        }
    }
}

impl TxnClient {
    /// Settles `lock`, met by a reader at `caller_ts` (0: by a writer, which never reads past).
    pub(super) async fn resolve_lock(&self, lock: &LockInfo, caller_ts: u64) -> Result<Resolved> {
        let current_ts = self.timestamp().await?;
        let expired = current_ts >> LOGICAL_BITS >= (lock.lock_version >> LOGICAL_BITS).saturating_add(lock.lock_ttl);
        let check = KvCheckTxnStatusRequest {
            context: None,
            primary_key: lock.primary_lock.clone(),
            lock_ts: lock.lock_version,
            caller_start_ts: caller_ts,
            current_ts,
            // A missing primary is rolled back only once the lock met has expired: until then
            // the primary's prewrite may simply not have arrived yet.
            rollback_if_not_exist: expired,
        };
        let mut bo = self.kv.backoffer();
        let (_, st) = self.kv.run(&mut bo, Locate::Key(&lock.primary_lock), |_| check.clone()).await?;
        if !st.error.is_empty() {
            return Err(TxnError::Kv(crate::kv::KvError::Server { region_id: 0, message: st.error }));
        }
        if st.key_error.is_some() {
            // The primary has neither lock nor record and the lock met is still alive.
            return Ok(Resolved::Wait);
        }
        let commit_version = match TxnAction::from_i32(st.action) {
            Some(TxnAction::Committed) => st.commit_version,
            Some(TxnAction::RolledBack | TxnAction::TtlExpireRollback | TxnAction::LockNotExistRollback) => 0,
            Some(TxnAction::Locked) | None => {
                if caller_ts != 0 && st.min_commit_ts > caller_ts {
                    return Ok(Resolved::Bypass(lock.lock_version));
                }
                return Ok(Resolved::Wait);
            }
        };
        let resolve = KvResolveLockRequest {
            context: None,
            start_version: lock.lock_version,
            commit_version,
            keys: vec![lock.key.clone()],
        };
        let (_, r) = self.kv.run(&mut bo, Locate::Key(&lock.key), |_| resolve.clone()).await?;
        if !r.error.is_empty() {
            return Err(TxnError::Kv(crate::kv::KvError::Server { region_id: 0, message: r.error }));
        }
        // A key error here means someone resolved it first: gone either way.
        Ok(Resolved::Gone)
    }
}

impl TxnClient {
    /// Resolves every lock of a transaction started at or before `max_ts`, region by region
    /// (before the GC safe point is raised past them). Returns how many were resolved; a lock
    /// whose transaction is still alive is [`TxnError::LockWaitTimeout`].
    pub async fn resolve_locks_before(&self, max_ts: u64) -> Result<usize> {
        let end = Bytes::new();
        let mut from = Bytes::new();
        let mut resolved = 0;
        loop {
            let kv = self.kv.clone();
            let build = |loc: &crate::kv::cache::CachedRegion| KvScanLockRequest {
                context: None,
                max_version: max_ts,
                start_key: from.clone(),
                end_key: crate::kv::range::clip_end(&loc.region, &end),
                limit: 0,
            };
            let (loc, resp) = kv.run(&mut kv.backoffer(), Locate::Forward { from: &from, end: &end }, build).await?;
            if !resp.error.is_empty() {
                return Err(TxnError::Kv(crate::kv::KvError::Server { region_id: loc.region.id, message: resp.error }));
            }
            for lock in &resp.locks {
                let mut wait = LockWait::new(self);
                loop {
                    match self.resolve_lock(lock, 0).await? {
                        Resolved::Gone | Resolved::Bypass(_) => break,
                        Resolved::Wait => wait.wait(&lock.key, lock.lock_version).await?,
                    }
                }
                resolved += 1;
            }
            match crate::kv::range::next_start(&loc.region, &end) {
                Some(next) => from = next,
                None => return Ok(resolved),
            }
        }
    }
}
