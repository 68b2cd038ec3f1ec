//! Per-operation measurements: a latency histogram of the successful operations, the
//! failures, and the first failure's message, for each kind of operation.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::ops::OpKind;
use crate::latency::{new_histogram, record};

/// One kind's measurements.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latencies of successful operations, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Failed operations.
    pub errors: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats { hist: new_histogram(), errors: 0, first_error: None }
    }
}

/// Every kind's measurements.
#[derive(Debug, Clone, Default)]
pub struct PhaseStats {
    /// Indexed by [`OpKind::index`].
    pub ops: [OpStats; 5],
}

impl PhaseStats {
    /// Records one successful operation.
    pub fn ok(&mut self, kind: OpKind, latency: Duration) {
        record(&mut self.ops[kind.index()].hist, latency);
    }

    /// Records one failed operation.
    pub fn failed(&mut self, kind: OpKind, error: &str) {
        let s = &mut self.ops[kind.index()];
        s.errors += 1;
        if s.first_error.is_none() {
            s.first_error = Some(error.to_string());
        }
    }

    /// Adds `other` in.
    pub fn merge(&mut self, other: &PhaseStats) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            // Both histograms have the same bounds; adding cannot fail.
            let _ = a.hist.add(&b.hist);
            a.errors += b.errors;
            if a.first_error.is_none() {
                a.first_error = b.first_error.clone();
            }
        }
    }

    /// Returns the measurements so far and starts over.
    pub fn take(&mut self) -> PhaseStats {
        std::mem::take(self)
    }

    /// Successful operations of every kind.
    pub fn count(&self) -> u64 {
        self.ops.iter().map(|s| s.hist.len()).sum()
    }

    /// Failed operations of every kind.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|s| s.errors).sum()
    }

    /// The kinds that ran (succeeded or failed at least once), in index order.
    pub fn kinds(&self) -> impl Iterator<Item = (OpKind, &OpStats)> {
        OpKind::ALL.into_iter().zip(&self.ops).filter(|(_, s)| !s.hist.is_empty() || s.errors > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_take() {
        let mut a = PhaseStats::default();
        a.ok(OpKind::Read, Duration::from_micros(100));
        a.failed(OpKind::Update, "boom");
        let mut b = PhaseStats::default();
        b.ok(OpKind::Read, Duration::from_micros(300));
        b.failed(OpKind::Update, "later");
        a.merge(&b);
        assert_eq!((a.count(), a.errors()), (2, 2));
        assert_eq!(a.ops[OpKind::Update.index()].first_error.as_deref(), Some("boom"));
        let kinds: Vec<OpKind> = a.kinds().map(|(k, _)| k).collect();
        assert_eq!(kinds, [OpKind::Read, OpKind::Update]);
        let taken = a.take();
        assert_eq!((taken.count(), a.count(), a.errors()), (2, 0, 0));
    }
}
