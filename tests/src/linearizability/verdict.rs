//! What the checker answers: a verdict per key, with an explanation when a key's history is
//! not linearizable, and a report over all keys.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::history::{show, Operation, Value};

/// One key's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, each placed within its interval, explains every answer.
    Linearizable,
    /// No order does.
    NotLinearizable(Box<Violation>),
    /// The search ran out of its step budget before deciding.
    Unknown {
        /// The key.
        key: Bytes,
        /// Steps taken.
        steps: u64,
    },
}

/// Why a key's history is not linearizable: the deepest point the search reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: Bytes,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<Operation>,
    /// The register's value after that prefix.
    pub state: Value,
    /// The operation that completed before any continuation of the prefix could include it.
    pub blocked: Operation,
    /// The operations that could have gone next after the prefix (the blocked one among them):
    /// none of them fits the register's value there, or each leads to a dead end.
    pub candidates: Vec<Operation>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LAST: usize = 12;
        writeln!(f, "key {} is not linearizable", show(&Some(self.key.clone())))?;
        writeln!(
            f,
            "longest linearizable prefix: {} operations, leaving the register at {}{}",
            self.prefix.len(),
            show(&self.state),
            if self.prefix.len() > LAST { format!("; its last {LAST}:") } else { ":".to_string() }
        )?;
        for o in &self.prefix[self.prefix.len().saturating_sub(LAST)..] {
            writeln!(f, "  {o}")?;
        }
        writeln!(f, "then this operation completed with no way to linearize it:\n  {}", self.blocked)?;
        writeln!(f, "operations that could have gone next ({}):", self.candidates.len())?;
        for o in self.candidates.iter().take(3 * LAST) {
            writeln!(f, "  {o}")?;
        }
        if self.candidates.len() > 3 * LAST {
            writeln!(f, "  … and {} more", self.candidates.len() - 3 * LAST)?;
        }
        Ok(())
    }
}

/// One key's check.
#[derive(Debug, Clone)]
pub struct KeyReport {
    /// The key.
    pub key: Bytes,
    /// Operations searched.
    pub ops: usize,
    /// Operations left out (reads without answer, unknown writes nobody observed).
    pub dropped: usize,
    /// Search steps taken.
    pub steps: u64,
    /// The verdict.
    pub verdict: Verdict,
}

/// The check of a whole history, key by key.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per key, in key order.
    pub keys: Vec<KeyReport>,
    /// Time the check took.
    pub elapsed: Duration,
}

impl Report {
    /// The overall verdict: the first key found not linearizable, else the first key left
    /// undecided, else linearizable.
    pub fn verdict(&self) -> &Verdict {
        let bad = self.keys.iter().find(|k| matches!(k.verdict, Verdict::NotLinearizable(_)));
        let undecided = || self.keys.iter().find(|k| matches!(k.verdict, Verdict::Unknown { .. }));
        bad.or_else(undecided).map(|k| &k.verdict).unwrap_or(&Verdict::Linearizable)
    }

    /// Whether every key is linearizable.
    pub fn is_linearizable(&self) -> bool {
        *self.verdict() == Verdict::Linearizable
    }

    /// Operations searched, over all keys.
    pub fn ops(&self) -> usize {
        self.keys.iter().map(|k| k.ops).sum()
    }

    /// Search steps, over all keys.
    pub fn steps(&self) -> u64 {
        self.keys.iter().map(|k| k.steps).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for k in &self.keys {
            let v = match &k.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::NotLinearizable(_) => "NOT linearizable",
                Verdict::Unknown { .. } => "undecided (step budget exhausted)",
            };
            writeln!(
                f,
                "key {}: {} ops searched, {} left out, {} steps: {v}",
                show(&Some(k.key.clone())),
                k.ops,
                k.dropped,
                k.steps
            )?;
        }
        write!(f, "checked in {:?}", self.elapsed)?;
        if let Verdict::NotLinearizable(v) = self.verdict() {
            write!(f, "\n{v}")?;
        }
        Ok(())
    }
}
