//! The transactional protocol (`kvrpcpb::Kv*`) in and out of the transaction layer's types:
//! write requests into [`TxnCommand`]s, results into responses, key errors and locks into
//! their messages.

use net::proto::kvrpcpb as pb;
use net::Method;
use prost::Message;

use super::actions::{Mutation, MvccInfo, TxnProps, TxnStatus};
use super::commands::{TxnCommand, TxnResponse};
use super::error::{KeyError, TxnError};
use super::types::{LockInfo, LockKind};
use super::write::WriteKind;

/// Whether `method` is a transactional write (a command replicated through raft).
pub fn is_write(method: Method) -> bool {
    matches!(
        method,
        Method::KvPrewrite
            | Method::KvCommit
            | Method::KvBatchRollback
            | Method::KvCleanup
            | Method::KvCheckTxnStatus
            | Method::KvResolveLock
            | Method::KvGc
    )
}

fn bad(e: prost::DecodeError) -> TxnError {
    TxnError::invalid(format!("request does not decode: {e}"))
}

fn keys(ks: Vec<bytes::Bytes>) -> Vec<Vec<u8>> {
    ks.into_iter().map(|k| k.to_vec()).collect()
}

fn mutation(m: pb::Mutation) -> Result<Mutation, TxnError> {
    let key = m.key.to_vec();
    Ok(match pb::Op::from_i32(m.op) {
        Some(pb::Op::Put) => Mutation::Put(key, m.value.to_vec()),
        Some(pb::Op::Insert) => Mutation::Insert(key, m.value.to_vec()),
        Some(pb::Op::Delete) => Mutation::Delete(key),
        Some(pb::Op::Lock) => Mutation::Lock(key),
        Some(pb::Op::CheckNotExists) => Mutation::CheckNotExists(key),
        None => return Err(TxnError::invalid(format!("unknown mutation op {}", m.op))),
    })
}

/// The command a transactional write request asks for.
pub fn command_of(method: Method, payload: &[u8]) -> Result<TxnCommand, TxnError> {
    Ok(match method {
        Method::KvPrewrite => {
            let r = pb::KvPrewriteRequest::decode(payload).map_err(bad)?;
            // `one_pc_commit_ts` was set by the leader that proposed the command (a client's
            // is refused before proposing: `crate::peer::one_pc`).
            TxnCommand::Prewrite {
                mutations: r.mutations.into_iter().map(mutation).collect::<Result<_, _>>()?,
                props: TxnProps {
                    start_ts: r.start_version,
                    primary: r.primary_lock.to_vec(),
                    lock_ttl_ms: r.lock_ttl,
                    min_commit_ts: r.min_commit_ts,
                    one_pc_commit_ts: (r.one_pc_commit_ts != 0).then_some(r.one_pc_commit_ts),
                },
            }
        }
        Method::KvCommit => {
            let r = pb::KvCommitRequest::decode(payload).map_err(bad)?;
            TxnCommand::Commit { keys: keys(r.keys), start_ts: r.start_version, commit_ts: r.commit_version }
        }
        Method::KvBatchRollback => {
            let r = pb::KvBatchRollbackRequest::decode(payload).map_err(bad)?;
            TxnCommand::BatchRollback { keys: keys(r.keys), start_ts: r.start_version }
        }
        Method::KvCleanup => {
            let r = pb::KvCleanupRequest::decode(payload).map_err(bad)?;
            TxnCommand::Cleanup { key: r.key.to_vec(), start_ts: r.start_version, current_ts: r.current_ts }
        }
        Method::KvCheckTxnStatus => {
            let r = pb::KvCheckTxnStatusRequest::decode(payload).map_err(bad)?;
            TxnCommand::CheckTxnStatus {
                primary: r.primary_key.to_vec(),
                start_ts: r.lock_ts,
                caller_start_ts: r.caller_start_ts,
                current_ts: r.current_ts,
                rollback_if_not_exist: r.rollback_if_not_exist,
            }
        }
        Method::KvResolveLock => {
            let r = pb::KvResolveLockRequest::decode(payload).map_err(bad)?;
            TxnCommand::ResolveLock {
                keys: keys(r.keys),
                start_ts: r.start_version,
                commit_ts: (r.commit_version != 0).then_some(r.commit_version),
            }
        }
        Method::KvGc => {
            let r = pb::KvGcRequest::decode(payload).map_err(bad)?;
            TxnCommand::Gc { keys: keys(r.keys), safe_point: r.safe_point }
        }
        other => return Err(TxnError::invalid(format!("{other:?} is not a transactional write"))),
    })
}

fn op_of(kind: LockKind) -> pb::Op {
    match kind {
        LockKind::Put => pb::Op::Put,
        LockKind::Delete => pb::Op::Delete,
        LockKind::Lock => pb::Op::Lock,
    }
}

/// A lock as a message.
pub fn lock_info(l: &LockInfo) -> pb::LockInfo {
    pb::LockInfo {
        key: l.key.clone().into(),
        primary_lock: l.primary.clone().into(),
        lock_version: l.start_ts,
        lock_ttl: l.ttl_ms,
        lock_type: op_of(l.kind) as i32,
        min_commit_ts: l.min_commit_ts,
    }
}

/// The MVCC dump of `key` as a message.
pub fn mvcc_response(key: &[u8], info: &MvccInfo) -> pb::KvMvccResponse {
    let kind = |k: WriteKind| match k {
        WriteKind::Put => "put",
        WriteKind::Delete => "delete",
        WriteKind::Lock => "lock",
        WriteKind::Rollback => "rollback",
    };
    pb::KvMvccResponse {
        lock: info.lock.as_ref().map(|l| lock_info(&l.info(key))),
        writes: info
            .writes
            .iter()
            .map(|(commit_ts, w)| pb::MvccWrite {
                commit_ts: *commit_ts,
                start_ts: w.start_ts,
                kind: kind(w.kind).to_string(),
                short_value: w.short_value.clone().unwrap_or_default().into(),
                has_short_value: w.short_value.is_some(),
                overlapped_rollback: w.overlapped_rollback,
            })
            .collect(),
        values: info
            .values
            .iter()
            .map(|(start_ts, v)| pb::MvccValue { start_ts: *start_ts, value: v.clone().into() })
            .collect(),
        ..Default::default()
    }
}

/// A key error as a message.
pub fn key_error(e: &KeyError) -> pb::KeyError {
    let mut m = pb::KeyError::default();
    match e {
        KeyError::Locked(l) => m.locked = Some(lock_info(l)),
        KeyError::WriteConflict { start_ts, conflict_start_ts, conflict_commit_ts, key, primary } => {
            m.conflict = Some(pb::WriteConflict {
                start_ts: *start_ts,
                conflict_ts: *conflict_start_ts,
                conflict_commit_ts: *conflict_commit_ts,
                key: key.clone().into(),
                primary: primary.clone().into(),
            })
        }
        KeyError::TxnLockNotFound { start_ts, key } => {
            m.txn_lock_not_found = Some(pb::TxnLockNotFound { start_ts: *start_ts, key: key.clone().into() })
        }
        KeyError::Committed { commit_ts } => m.committed = *commit_ts,
        KeyError::AlreadyExist { key } => m.already_exist = Some(pb::AlreadyExist { key: key.clone().into() }),
        KeyError::CommitTsExpired { start_ts, commit_ts, min_commit_ts, key } => {
            m.commit_ts_expired = Some(pb::CommitTsExpired {
                start_ts: *start_ts,
                attempted_commit_ts: *commit_ts,
                min_commit_ts: *min_commit_ts,
                key: key.clone().into(),
            })
        }
        KeyError::TxnNotFound { start_ts, primary } => {
            m.txn_not_found = Some(pb::TxnNotFound { start_ts: *start_ts, primary_key: primary.clone().into() })
        }
    }
    m
}

/// Splits a failure into the response's `key_error` and `error` fields.
fn split(e: TxnError) -> (Option<pb::KeyError>, String) {
    match e {
        TxnError::Key(k) => (Some(key_error(&k)), String::new()),
        other => (None, other.to_string()),
    }
}

/// The encoded response of a transactional write `method` whose command gave `result`.
pub fn response_payload(method: Method, result: Result<TxnResponse, TxnError>) -> Vec<u8> {
    let (key_err, error) = match &result {
        Ok(_) => (None, String::new()),
        Err(e) => split(e.clone()),
    };
    match method {
        Method::KvPrewrite => {
            let (errors, committed) = match result {
                Ok(TxnResponse::Prewrite { errors, committed }) => (errors.iter().map(key_error).collect(), committed),
                _ => (key_err.into_iter().collect(), None),
            };
            pb::KvPrewriteResponse { errors, error, one_pc_commit_ts: committed.unwrap_or(0), ..Default::default() }
                .encode_to_vec()
        }
        Method::KvCommit => pb::KvCommitResponse { key_error: key_err, error, ..Default::default() }.encode_to_vec(),
        Method::KvBatchRollback => {
            pb::KvBatchRollbackResponse { key_error: key_err, error, ..Default::default() }.encode_to_vec()
        }
        Method::KvCleanup => pb::KvCleanupResponse { key_error: key_err, error, ..Default::default() }.encode_to_vec(),
        Method::KvResolveLock => {
            pb::KvResolveLockResponse { key_error: key_err, error, ..Default::default() }.encode_to_vec()
        }
        Method::KvGc => {
            let mut r = pb::KvGcResponse { error, ..Default::default() };
            if let Ok(TxnResponse::Gc(s)) = result {
                r.writes_removed = s.writes as u64;
                r.values_removed = s.values as u64;
            }
            r.encode_to_vec()
        }
        Method::KvCheckTxnStatus => {
            let mut r = pb::KvCheckTxnStatusResponse { key_error: key_err, error, ..Default::default() };
            if let Ok(TxnResponse::Status(st)) = result {
                let action = match st {
                    TxnStatus::Locked { ttl_ms, min_commit_ts } => {
                        r.lock_ttl = ttl_ms;
                        r.min_commit_ts = min_commit_ts;
                        pb::TxnAction::Locked
                    }
                    TxnStatus::Committed { commit_ts } => {
                        r.commit_version = commit_ts;
                        pb::TxnAction::Committed
                    }
                    TxnStatus::RolledBack => pb::TxnAction::RolledBack,
                    TxnStatus::TtlExpired => pb::TxnAction::TtlExpireRollback,
                    TxnStatus::LockNotExistRolledBack => pb::TxnAction::LockNotExistRollback,
                };
                r.action = action as i32;
            }
            r.encode_to_vec()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_commands_and_bad_ones_are_refused() {
        let mut req = pb::KvPrewriteRequest {
            mutations: vec![pb::Mutation { op: pb::Op::Insert as i32, key: "k".into(), value: "v".into() }],
            primary_lock: "k".into(),
            start_version: 5,
            lock_ttl: 100,
            ..Default::default()
        };
        match command_of(Method::KvPrewrite, &req.encode_to_vec()).unwrap() {
            TxnCommand::Prewrite { mutations, props } => {
                assert_eq!(mutations, vec![Mutation::Insert(b"k".to_vec(), b"v".to_vec())]);
                assert_eq!((props.start_ts, props.lock_ttl_ms, props.one_pc_commit_ts), (5, 100, None));
            }
            other => panic!("{other:?}"),
        }
        // The leader's choice, in the replicated command.
        req.one_pc_commit_ts = 6;
        match command_of(Method::KvPrewrite, &req.encode_to_vec()).unwrap() {
            TxnCommand::Prewrite { props, .. } => assert_eq!(props.one_pc_commit_ts, Some(6)),
            other => panic!("{other:?}"),
        }
        let bad_op = pb::KvPrewriteRequest {
            mutations: vec![pb::Mutation { op: 42, key: "k".into(), value: "v".into() }],
            ..Default::default()
        };
        assert!(matches!(command_of(Method::KvPrewrite, &bad_op.encode_to_vec()), Err(TxnError::Invalid(_))));
        assert!(matches!(command_of(Method::KvCommit, &[0xFF, 0xFF]), Err(TxnError::Invalid(_))));
        assert!(matches!(command_of(Method::RawGet, &[]), Err(TxnError::Invalid(_))));
    }

    #[test]
    fn results_become_responses() {
        let locked = KeyError::Locked(LockInfo {
            key: b"k".to_vec(),
            primary: b"p".to_vec(),
            start_ts: 3,
            ttl_ms: 10,
            kind: LockKind::Put,
            min_commit_ts: 4,
        });
        let p = response_payload(
            Method::KvPrewrite,
            Ok(TxnResponse::Prewrite { errors: vec![locked.clone()], committed: None }),
        );
        let r = pb::KvPrewriteResponse::decode(p.as_slice()).unwrap();
        assert_eq!((r.errors[0].locked.as_ref().unwrap().lock_version, r.one_pc_commit_ts), (3, 0));
        let p = response_payload(Method::KvPrewrite, Ok(TxnResponse::Prewrite { errors: vec![], committed: Some(8) }));
        assert_eq!(pb::KvPrewriteResponse::decode(p.as_slice()).unwrap().one_pc_commit_ts, 8);
        let p = response_payload(Method::KvCommit, Err(TxnError::Key(KeyError::Committed { commit_ts: 9 })));
        assert_eq!(pb::KvCommitResponse::decode(p.as_slice()).unwrap().key_error.unwrap().committed, 9);
        let p =
            response_payload(Method::KvCheckTxnStatus, Ok(TxnResponse::Status(TxnStatus::Committed { commit_ts: 12 })));
        let r = pb::KvCheckTxnStatusResponse::decode(p.as_slice()).unwrap();
        assert_eq!((r.action, r.commit_version), (pb::TxnAction::Committed as i32, 12));
        let p = response_payload(Method::KvCleanup, Err(TxnError::invalid("no keys")));
        assert!(pb::KvCleanupResponse::decode(p.as_slice()).unwrap().error.contains("no keys"));
    }
}
