//! A snapshot-isolation checker for histories of transactions over registers.
//!
//! Every write in a history writes a value no other write writes (the workload makes them
//! unique), so a read names the transaction it read from. With the start and commit
//! timestamps the client saw, snapshot isolation fixes the answer of every read exactly: the
//! value of the last committed write of the key whose `commit_ts <= start_ts` (the store's
//! visibility rule; a one-phase commit's timestamp may equal a later transaction's start). The checker
//! reports each read that differs and how, and each pair of committed transactions that
//! wrote one key concurrently:
//!
//! - **dirty read**: a read returned the value of a transaction that did not commit;
//! - **future read**: it returned a value committed after its `start_ts`;
//! - **stale read**: a newer committed version at or below `start_ts` existed (read skew and
//!   fractured reads show up as this);
//! - **phantom value**: a value no transaction of the history wrote;
//! - **lost update**: two committed transactions with overlapping `[start_ts, commit_ts]`
//!   both wrote a key (first-committer-wins was not enforced).
//!
//! Transactions whose commit outcome the client does not know are treated as committed when
//! someone read their write (at the commit timestamp they asked for) and are otherwise left
//! out of the stale and lost-update checks. Reads are taken to come before the transaction's
//! own writes (the workloads read, then write).

use std::collections::HashMap;

use bytes::Bytes;

/// How a transaction ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed at this timestamp.
    Committed(u64),
    /// Failed before its commit could apply (conflict, rollback, nothing sent).
    Aborted,
    /// Sent a commit whose outcome is unknown, at this commit timestamp.
    Unknown(u64),
    /// A read-only transaction (a snapshot read at `start_ts`).
    ReadOnly,
}

/// One transaction of a history.
#[derive(Debug, Clone)]
pub struct TxnRecord {
    /// Its snapshot timestamp.
    pub start_ts: u64,
    /// How it ended.
    pub outcome: TxnOutcome,
    /// What it read (`None`: the key had no value).
    pub reads: Vec<(Bytes, Option<Bytes>)>,
    /// What it wrote.
    pub writes: Vec<(Bytes, Bytes)>,
}

/// The values present before the history starts (written at timestamp 0).
pub type Initial = HashMap<Bytes, Bytes>;

/// What the checker found.
#[derive(Debug, Default)]
pub struct SiReport {
    /// Transactions checked.
    pub txns: usize,
    /// Reads checked.
    pub reads: usize,
    /// Each violation found, described.
    pub violations: Vec<String>,
}

impl SiReport {
    /// Whether the history is snapshot-isolated as far as the checks can tell.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl std::fmt::Display for SiReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SI check: {} transactions, {} reads, {} violations", self.txns, self.reads, self.violations.len())?;
        for v in self.violations.iter().take(10) {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// A write's author: `None` for the initial state.
type Writer = Option<usize>;

/// Checks `history` (starting from `initial`) for the anomalies listed in the module docs.
pub fn check(history: &[TxnRecord], initial: &Initial) -> SiReport {
    let mut report = SiReport { txns: history.len(), ..SiReport::default() };
    // Who wrote each (key, value).
    let mut writer: HashMap<(&Bytes, &Bytes), usize> = HashMap::new();
    for (i, t) in history.iter().enumerate() {
        for (k, v) in &t.writes {
            if let Some(j) = writer.insert((k, v), i) {
                report.violations.push(format!("workload error: txns {j} and {i} both wrote {v:?} to {k:?}"));
            }
        }
    }
    // A transaction of unknown outcome that someone read from did commit.
    let mut commit_ts: Vec<Option<u64>> = history
        .iter()
        .map(|t| match t.outcome {
            TxnOutcome::Committed(ts) => Some(ts),
            _ => None,
        })
        .collect();
    for t in history {
        for (k, v) in t.reads.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))) {
            if let Some(&w) = writer.get(&(k, v)) {
                if let TxnOutcome::Unknown(ts) = history[w].outcome {
                    commit_ts[w] = Some(ts);
                }
            }
        }
    }
    // Committed versions of each key, by commit timestamp.
    let mut versions: HashMap<&Bytes, Vec<(u64, usize)>> = HashMap::new();
    for (i, t) in history.iter().enumerate() {
        if let Some(ts) = commit_ts[i] {
            for (k, _) in &t.writes {
                versions.entry(k).or_default().push((ts, i));
            }
        }
    }
    for v in versions.values_mut() {
        v.sort_unstable();
    }
    for (r, t) in history.iter().enumerate() {
        for (k, got) in &t.reads {
            report.reads += 1;
            let from: Writer = match got {
                None => None,
                Some(v) => match writer.get(&(k, v)) {
                    Some(&w) => Some(w),
                    None if initial.get(k) == Some(v) => None,
                    None => {
                        report.violations.push(format!("phantom value: txn {r} read {v:?} from {k:?}, never written"));
                        continue;
                    }
                },
            };
            if got.is_none() && initial.contains_key(k) {
                report.violations.push(format!("lost value: txn {r} read nothing from {k:?}, which had a value"));
                continue;
            }
            let from_ts = match from {
                None => 0,
                Some(w) if history[w].outcome == TxnOutcome::Aborted => {
                    report.violations.push(format!("dirty read: txn {r} read {k:?} from aborted txn {w}"));
                    continue;
                }
                Some(w) => match commit_ts[w] {
                    Some(ts) => ts,
                    None => continue, // cannot happen: a read write of unknown outcome committed
                },
            };
            if from.is_some() && from_ts > t.start_ts {
                let w = from.unwrap_or_default();
                report.violations.push(format!(
                    "future read: txn {r} (start {}) read {k:?} from txn {w} committed at {from_ts}",
                    t.start_ts
                ));
                continue;
            }
            let newer = versions
                .get(k)
                .and_then(|v| v.iter().find(|&&(ts, w)| ts > from_ts && ts <= t.start_ts && Some(w) != from));
            if let Some(&(ts, w)) = newer {
                report.violations.push(format!(
                    "stale read: txn {r} (start {}) read {k:?} as of {from_ts}, missing txn {w}'s commit at {ts}",
                    t.start_ts
                ));
            }
        }
    }
    // First committer wins: no two committed writers of a key overlap.
    for (k, v) in &versions {
        for (a, &(ca, ta)) in v.iter().enumerate() {
            for &(cb, tb) in &v[a + 1..] {
                // cb ≥ ca: they overlap if tb started before ta committed.
                if history[tb].start_ts < ca && ta != tb {
                    report.violations.push(format!(
                        "lost update: txns {ta} [{}, {ca}] and {tb} [{}, {cb}] both wrote {k:?}",
                        history[ta].start_ts, history[tb].start_ts
                    ));
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    fn txn(start_ts: u64, outcome: TxnOutcome, reads: &[(&str, Option<&str>)], writes: &[(&str, &str)]) -> TxnRecord {
        TxnRecord {
            start_ts,
            outcome,
            reads: reads.iter().map(|(k, v)| (b(k), v.map(b))).collect(),
            writes: writes.iter().map(|(k, v)| (b(k), b(v))).collect(),
        }
    }

    fn initial() -> Initial {
        [(b("x"), b("x0")), (b("y"), b("y0"))].into_iter().collect()
    }

    use TxnOutcome::*;

    #[test]
    fn a_serial_history_with_snapshot_reads_passes() {
        let h = vec![
            txn(10, Committed(11), &[("x", Some("x0"))], &[("x", "x1")]),
            txn(12, Committed(14), &[("x", Some("x1")), ("y", Some("y0"))], &[("y", "y1")]),
            // Started before the second committed: sees x1 but the old y.
            txn(13, ReadOnly, &[("x", Some("x1")), ("y", Some("y0"))], &[]),
            txn(15, ReadOnly, &[("x", Some("x1")), ("y", Some("y1")), ("z", None)], &[]),
            txn(16, Aborted, &[("x", Some("x1"))], &[("x", "x-aborted")]),
            // Unknown outcome, read by a later reader: committed.
            txn(17, Unknown(18), &[], &[("z", "z1")]),
            txn(19, ReadOnly, &[("z", Some("z1"))], &[]),
        ];
        let r = check(&h, &initial());
        assert!(r.ok(), "{r}");
        assert_eq!(r.reads, 10);
    }

    #[test]
    fn a_lost_update_is_found() {
        // Both read x0 and both committed a write of x: their intervals overlap.
        let h = vec![
            txn(10, Committed(13), &[("x", Some("x0"))], &[("x", "x1")]),
            txn(11, Committed(14), &[("x", Some("x0"))], &[("x", "x2")]),
        ];
        let r = check(&h, &initial());
        assert_eq!(r.violations.len(), 1, "{r}");
        assert!(r.violations[0].starts_with("lost update"), "{r}");
    }

    #[test]
    fn a_read_from_the_future_is_found() {
        let h = vec![txn(10, Committed(20), &[], &[("x", "x1")]), txn(15, ReadOnly, &[("x", Some("x1"))], &[])];
        let r = check(&h, &initial());
        assert!(r.violations.iter().any(|v| v.starts_with("future read")), "{r}");
    }

    #[test]
    fn a_commit_at_the_readers_start_is_visible_to_it() {
        // A one-phase commit's timestamp may equal a later start: the reader must see it.
        let sees = vec![txn(10, Committed(15), &[], &[("x", "x1")]), txn(15, ReadOnly, &[("x", Some("x1"))], &[])];
        assert!(check(&sees, &initial()).ok());
        let misses = vec![txn(10, Committed(15), &[], &[("x", "x1")]), txn(15, ReadOnly, &[("x", Some("x0"))], &[])];
        let r = check(&misses, &initial());
        assert!(r.violations.iter().any(|v| v.starts_with("stale read")), "{r}");
    }

    #[test]
    fn read_skew_shows_as_a_stale_read() {
        // T1 moves value from x to y; a reader at 15 sees T1's x but the old y.
        let h = vec![
            txn(10, Committed(12), &[("x", Some("x0")), ("y", Some("y0"))], &[("x", "x1"), ("y", "y1")]),
            txn(15, ReadOnly, &[("x", Some("x1")), ("y", Some("y0"))], &[]),
        ];
        let r = check(&h, &initial());
        assert_eq!(r.violations.len(), 1, "{r}");
        assert!(r.violations[0].starts_with("stale read"), "{r}");
    }

    #[test]
    fn dirty_phantom_and_lost_values_are_found() {
        let h = vec![
            txn(10, Aborted, &[], &[("x", "x-dirty")]),
            txn(15, ReadOnly, &[("x", Some("x-dirty")), ("y", Some("never")), ("y", None)], &[]),
        ];
        let r = check(&h, &initial());
        let kinds: Vec<&str> = r.violations.iter().map(|v| v.split(':').next().unwrap_or("")).collect();
        assert_eq!(kinds, ["dirty read", "phantom value", "lost value"], "{r}");
    }

    #[test]
    fn an_unknown_outcome_nobody_read_is_not_held_against_anyone() {
        let h = vec![
            txn(10, Unknown(12), &[], &[("x", "x1")]),
            txn(11, Committed(13), &[("x", Some("x0"))], &[("x", "x2")]),
            txn(14, ReadOnly, &[("x", Some("x2"))], &[]),
        ];
        assert!(check(&h, &initial()).ok());
        // Had someone read x1, both would have committed concurrently: a lost update.
        let mut h2 = h.clone();
        h2.push(txn(12, ReadOnly, &[("x", Some("x0"))], &[]));
        h2.push(txn(13, ReadOnly, &[("x", Some("x1"))], &[]));
        let r = check(&h2, &initial());
        assert!(r.violations.iter().any(|v| v.starts_with("lost update")), "{r}");
    }
}
