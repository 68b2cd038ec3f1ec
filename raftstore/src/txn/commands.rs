//! Commands: a request of the transactional protocol over one region's keys, processed
//! against a snapshot into one set of modifications that the store replicates through raft
//! as one command and applies in one write batch. All or nothing: a command that fails on
//! any key writes nothing.

use super::actions::{self, GcStats, Mutation, TxnProps, TxnStatus};
use super::error::{KeyError, Result, TxnError};
use super::mvcc_txn::MvccTxn;
use super::reader::MvccReader;
use super::snapshot::{Modify, Snapshot};

/// A transactional write command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnCommand {
    /// Lock (or, with `props.one_pc_commit_ts`, commit at once) the mutations' keys.
    Prewrite {
        /// The changes, one per key.
        mutations: Vec<Mutation>,
        /// The transaction.
        props: TxnProps,
    },
    /// Commit the keys' locks at `commit_ts`.
    Commit {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The transaction.
        start_ts: u64,
        /// Its commit timestamp.
        commit_ts: u64,
    },
    /// Roll the transaction back on the keys.
    BatchRollback {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The transaction.
        start_ts: u64,
    },
    /// Roll back the transaction's lock on `key` if its TTL passed.
    Cleanup {
        /// The key.
        key: Vec<u8>,
        /// The transaction.
        start_ts: u64,
        /// Now (0: do not wait for the TTL).
        current_ts: u64,
    },
    /// Check (and act on) the transaction's status at its primary.
    CheckTxnStatus {
        /// The primary key.
        primary: Vec<u8>,
        /// The transaction.
        start_ts: u64,
        /// The caller's read timestamp, pushed past (0: none).
        caller_start_ts: u64,
        /// Now, for TTL expiry.
        current_ts: u64,
        /// Roll back a transaction with neither lock nor record.
        rollback_if_not_exist: bool,
    },
    /// Commit (`commit_ts`) or roll back (`None`) the transaction's locks on the keys.
    ResolveLock {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The transaction.
        start_ts: u64,
        /// Its commit timestamp, or `None` when it was rolled back.
        commit_ts: Option<u64>,
    },
    /// Remove the versions of the keys no read at or after `safe_point` sees.
    Gc {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The safe point.
        safe_point: u64,
    },
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResponse {
    /// Prewrite: the key errors, one per refused key (empty: every key prewritten).
    Prewrite {
        /// Why keys were refused.
        errors: Vec<KeyError>,
        /// Committed in one phase at this timestamp (a one-phase commit, or a retry that found
        /// its first attempt's commit); `None`: locked, to be committed.
        committed: Option<u64>,
    },
    /// Commit, rollback, cleanup, resolve: done.
    Done,
    /// Check-txn-status: the status.
    Status(TxnStatus),
    /// GC: what was removed.
    Gc(GcStats),
}

/// A processed command: what to write and what to answer once it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The modifications (empty: nothing to replicate).
    pub modifies: Vec<Modify>,
    /// The answer.
    pub response: TxnResponse,
}

impl TxnCommand {
    /// The user keys the command touches (checked against the region at apply).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            TxnCommand::Prewrite { mutations, .. } => mutations.iter().map(Mutation::key).collect(),
            TxnCommand::Commit { keys, .. }
            | TxnCommand::BatchRollback { keys, .. }
            | TxnCommand::ResolveLock { keys, .. }
            | TxnCommand::Gc { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            TxnCommand::Cleanup { key, .. } => vec![key],
            TxnCommand::CheckTxnStatus { primary, .. } => vec![primary],
        }
    }

    fn start_ts(&self) -> u64 {
        match self {
            TxnCommand::Prewrite { props, .. } => props.start_ts,
            TxnCommand::Commit { start_ts, .. }
            | TxnCommand::BatchRollback { start_ts, .. }
            | TxnCommand::Cleanup { start_ts, .. }
            | TxnCommand::CheckTxnStatus { start_ts, .. }
            | TxnCommand::ResolveLock { start_ts, .. } => *start_ts,
            TxnCommand::Gc { .. } => 0,
        }
    }

    fn validate(&self) -> Result<()> {
        let keys = self.keys();
        if keys.is_empty() {
            return Err(TxnError::invalid("no keys"));
        }
        if keys.iter().any(|k| k.is_empty()) {
            return Err(TxnError::invalid("an empty key"));
        }
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(TxnError::invalid("a key appears twice"));
        }
        if !matches!(self, TxnCommand::Gc { .. }) && self.start_ts() == 0 {
            return Err(TxnError::invalid("start_ts 0"));
        }
        if let TxnCommand::Prewrite { props, .. } = self {
            if props.primary.is_empty() {
                return Err(TxnError::invalid("an empty primary key"));
            }
            if props.one_pc_commit_ts.is_some_and(|c| c <= props.start_ts) {
                return Err(TxnError::invalid("one-phase commit_ts is not after start_ts"));
            }
        }
        Ok(())
    }

    /// Processes the command against `snap`. Key errors of a prewrite are its answer (with
    /// nothing written); any other command's first key error is returned as the error.
    pub fn process<S: Snapshot>(&self, snap: &S) -> Result<Processed> {
        self.validate()?;
        let reader = MvccReader::new(snap);
        let mut txn = MvccTxn::new(self.start_ts());
        let response = match self {
            TxnCommand::Prewrite { mutations, props } => {
                let mut errors = Vec::new();
                let mut found_commit = None;
                for m in mutations {
                    match actions::prewrite(&mut txn, &reader, props, m) {
                        Ok(actions::Prewritten::Committed(ts)) => found_commit = Some(ts),
                        Ok(_) => {}
                        Err(TxnError::Key(e)) => errors.push(e),
                        Err(e) => return Err(e),
                    }
                }
                if !errors.is_empty() {
                    let response = TxnResponse::Prewrite { errors, committed: None };
                    return Ok(Processed { modifies: Vec::new(), response });
                }
                if let Some(ts) = found_commit {
                    // An earlier attempt committed the transaction (one command, all its
                    // keys): this retry writes nothing and reports that commit.
                    return Ok(Processed {
                        modifies: Vec::new(),
                        response: TxnResponse::Prewrite { errors, committed: Some(ts) },
                    });
                }
                TxnResponse::Prewrite { errors, committed: props.one_pc_commit_ts }
            }
            TxnCommand::Commit { keys, commit_ts, .. } => {
                for k in keys {
                    actions::commit(&mut txn, &reader, k, *commit_ts)?;
                }
                TxnResponse::Done
            }
            TxnCommand::BatchRollback { keys, .. } => {
                for k in keys {
                    actions::rollback(&mut txn, &reader, k)?;
                }
                TxnResponse::Done
            }
            TxnCommand::Cleanup { key, current_ts, .. } => {
                actions::cleanup(&mut txn, &reader, key, *current_ts)?;
                TxnResponse::Done
            }
            TxnCommand::CheckTxnStatus { primary, caller_start_ts, current_ts, rollback_if_not_exist, .. } => {
                TxnResponse::Status(actions::check_txn_status(
                    &mut txn,
                    &reader,
                    primary,
                    *caller_start_ts,
                    *current_ts,
                    *rollback_if_not_exist,
                )?)
            }
            TxnCommand::ResolveLock { keys, commit_ts, .. } => {
                for k in keys {
                    actions::resolve_lock(&mut txn, &reader, k, *commit_ts)?;
                }
                TxnResponse::Done
            }
            TxnCommand::Gc { keys, safe_point } => {
                let mut total = GcStats::default();
                for k in keys {
                    let s = actions::gc(&mut txn, &reader, k, *safe_point)?;
                    total.writes += s.writes;
                    total.values += s.values;
                }
                TxnResponse::Gc(total)
            }
        };
        Ok(Processed { modifies: txn.into_modifies(), response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::snapshot::MemStore;

    fn props(primary: &[u8], start_ts: u64) -> TxnProps {
        TxnProps { start_ts, primary: primary.to_vec(), lock_ttl_ms: 3_000, min_commit_ts: 0, one_pc_commit_ts: None }
    }

    fn run(mem: &mut MemStore, cmd: TxnCommand) -> Result<TxnResponse> {
        let p = cmd.process(mem)?;
        mem.apply(p.modifies);
        Ok(p.response)
    }

    fn put(k: &[u8], v: &[u8]) -> Mutation {
        Mutation::Put(k.to_vec(), v.to_vec())
    }

    #[test]
    fn a_prewrite_refused_on_one_key_writes_none() {
        let mut mem = MemStore::new();
        run(&mut mem, TxnCommand::Prewrite { mutations: vec![put(b"b", b"x")], props: props(b"b", 5) }).unwrap();
        let cmd = TxnCommand::Prewrite { mutations: vec![put(b"a", b"1"), put(b"b", b"2")], props: props(b"a", 10) };
        match run(&mut mem, cmd).unwrap() {
            TxnResponse::Prewrite { errors, committed } => {
                assert_eq!((errors.len(), committed), (1, None));
                assert!(matches!(&errors[0], KeyError::Locked(l) if l.key == b"b" && l.start_ts == 5));
            }
            other => panic!("{other:?}"),
        }
        let reader = MvccReader::new(&mem);
        assert!(reader.load_lock(b"a").unwrap().is_none());
    }

    #[test]
    fn a_two_key_transaction_commits_through_commands() {
        let mut mem = MemStore::new();
        let cmd = TxnCommand::Prewrite { mutations: vec![put(b"a", b"1"), put(b"b", b"2")], props: props(b"a", 10) };
        assert_eq!(run(&mut mem, cmd).unwrap(), TxnResponse::Prewrite { errors: vec![], committed: None });
        let commit = |keys: &[&[u8]]| TxnCommand::Commit {
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            start_ts: 10,
            commit_ts: 20,
        };
        run(&mut mem, commit(&[b"a"])).unwrap();
        run(&mut mem, commit(&[b"b"])).unwrap();
        let reader = MvccReader::new(&mem);
        let got = actions::scan(&reader, b"", b"", 10, 25, &[]).unwrap();
        assert_eq!(got, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    }

    #[test]
    fn a_one_phase_commit_answers_its_timestamp_and_a_retry_answers_the_first() {
        let mut mem = MemStore::new();
        let mut p = props(b"a", 10);
        p.one_pc_commit_ts = Some(12);
        let cmd =
            |p: &TxnProps| TxnCommand::Prewrite { mutations: vec![put(b"a", b"1"), put(b"b", b"2")], props: p.clone() };
        assert_eq!(run(&mut mem, cmd(&p)).unwrap(), TxnResponse::Prewrite { errors: vec![], committed: Some(12) });
        // The answer was lost; the retry reaches a new leader, which picks another timestamp.
        p.one_pc_commit_ts = Some(14);
        let retry = cmd(&p).process(&mem).unwrap();
        assert!(retry.modifies.is_empty());
        assert_eq!(retry.response, TxnResponse::Prewrite { errors: vec![], committed: Some(12) });
        let reader = MvccReader::new(&mem);
        assert!(reader.load_lock(b"a").unwrap().is_none());
        let got = actions::scan(&reader, b"", b"", 10, 12, &[]).unwrap();
        assert_eq!(got, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
        assert!(actions::scan(&reader, b"", b"", 10, 11, &[]).unwrap().is_empty());
    }

    #[test]
    fn invalid_commands_are_refused_before_reading() {
        let mem = MemStore::new();
        let dup = TxnCommand::BatchRollback { keys: vec![b"a".to_vec(), b"a".to_vec()], start_ts: 3 };
        assert!(matches!(dup.process(&mem), Err(TxnError::Invalid(_))));
        let empty = TxnCommand::Commit { keys: vec![], start_ts: 3, commit_ts: 4 };
        assert!(matches!(empty.process(&mem), Err(TxnError::Invalid(_))));
        let mut p = props(b"a", 10);
        p.one_pc_commit_ts = Some(10);
        let one_pc = TxnCommand::Prewrite { mutations: vec![put(b"a", b"1")], props: p };
        assert!(matches!(one_pc.process(&mem), Err(TxnError::Invalid(_))));
        let no_ts = TxnCommand::Cleanup { key: b"a".to_vec(), start_ts: 0, current_ts: 0 };
        assert!(matches!(no_ts.process(&mem), Err(TxnError::Invalid(_))));
    }
}
