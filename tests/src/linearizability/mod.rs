//! # linearizability — recording client histories and checking them
//!
//! Clients share a [`Recorder`] and note every get, put and compare-and-swap with its
//! invocation and completion times and its answer; an operation that failed or timed out has
//! an unknown outcome (it may or may not have taken effect) and a completion at infinity.
//! [`check`] then decides whether the history is *linearizable*: whether each operation can
//! be given one instant within its interval so that, in the order of those instants, every
//! answer is what a single register per key would have given.
//!
//! * [`history`]: operations, outcomes, the recorder.
//! * [`kv`]: running operations through the routing client, recorded.
//! * `model`: the register and how one key's operations are prepared.
//! * `wgl`: the search (Wing & Gong with Lowe's memoization), one key at a time: keys are
//!   independent registers, so a history is linearizable iff each key's sub-history is.
//! * [`verdict`]: verdicts, explanations, the report.
//!
//! Unknown operations are optional: they may be linearized anywhere after their invocation,
//! or never. Reads without an answer say nothing and are dropped. The search is bounded by a
//! step budget; running out gives [`Verdict::Unknown`], never a guess.
//!
//! ```
//! use percore_tests::linearizability::{check, CheckConfig, History, Op, Outcome};
//! let mut h = History::new();
//! h.push(0, "k", Op::Put("a".into()), 0, Some(10), Outcome::Put);
//! h.push(1, "k", Op::Get, 20, Some(30), Outcome::Get(None)); // stale: the put completed before
//! assert!(!check(&h, &CheckConfig::default()).is_linearizable());
//! ```

pub mod history;
pub mod kv;
mod model;
pub mod verdict;
mod wgl;

#[cfg(test)]
mod brute_tests;
#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

pub use history::{cas_outcome, History, Op, Operation, Outcome, Recorder, Value};
pub use kv::{RecordingClient, Retries};
pub use verdict::{KeyReport, Report, Verdict, Violation};

/// Checker settings.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Search steps allowed per key before giving up with [`Verdict::Unknown`]. Default 10 M.
    pub max_steps: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig { max_steps: 10_000_000 }
    }
}

/// Checks `history`, key by key.
pub fn check(history: &History, config: &CheckConfig) -> Report {
    let start = Instant::now();
    let mut by_key: BTreeMap<&Bytes, Vec<&Operation>> = BTreeMap::new();
    for o in &history.ops {
        by_key.entry(&o.key).or_default().push(o);
    }
    let keys = by_key.into_iter().map(|(key, ops)| check_key(key, &ops, config)).collect();
    Report { keys, elapsed: start.elapsed() }
}

fn check_key(key: &Bytes, ops: &[&Operation], config: &CheckConfig) -> KeyReport {
    let prepared = model::prepare(ops);
    let (search, steps) = wgl::search(&prepared.ops, config.max_steps);
    let op = |i: usize| ops[i].clone();
    let verdict = match search {
        wgl::Search::Linearizable => Verdict::Linearizable,
        wgl::Search::TooBig => Verdict::Unknown { key: key.clone(), steps },
        wgl::Search::Illegal(f) => Verdict::NotLinearizable(Box::new(Violation {
            key: key.clone(),
            prefix: f.prefix.into_iter().map(op).collect(),
            state: prepared.values.get(f.state as usize).cloned().flatten(),
            blocked: op(f.blocked),
            candidates: f.candidates.into_iter().map(op).collect(),
        })),
    };
    KeyReport { key: key.clone(), ops: prepared.ops.len(), dropped: prepared.dropped, steps, verdict }
}
