//! Per-operation measurements: a latency histogram of the successful operations, the
//! failures, the first failure's message, and the operations (successful or not) slower than
//! [`SLOW`], for each kind of operation.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::ops::OpKind;
use crate::latency::{new_histogram, record};

/// An operation slower than this is counted as slow (a store answers every request within a
/// few seconds; a healthy one far within this).
pub const SLOW: Duration = Duration::from_secs(1);

/// One kind's measurements.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latencies of successful operations, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Failed operations.
    pub errors: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Operations, successful or failed, that took longer than [`SLOW`].
    pub slow: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats { hist: new_histogram(), errors: 0, first_error: None, slow: 0 }
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
        let s = &mut self.ops[kind.index()];
        record(&mut s.hist, latency);
        s.slow += u64::from(latency > SLOW);
    }

    /// Records one failed operation that took `latency`.
    pub fn failed(&mut self, kind: OpKind, error: &str, latency: Duration) {
        let s = &mut self.ops[kind.index()];
        s.errors += 1;
        s.slow += u64::from(latency > SLOW);
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
            a.slow += b.slow;
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

    /// Operations of every kind slower than [`SLOW`].
    pub fn slow(&self) -> u64 {
        self.ops.iter().map(|s| s.slow).sum()
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
        a.failed(OpKind::Update, "boom", Duration::from_millis(1));
        let mut b = PhaseStats::default();
        b.ok(OpKind::Read, Duration::from_micros(300));
        b.ok(OpKind::Read, Duration::from_millis(1500));
        b.failed(OpKind::Update, "later", Duration::from_secs(10));
        a.merge(&b);
        assert_eq!((a.count(), a.errors(), a.slow()), (3, 2, 2));
        assert_eq!((a.ops[OpKind::Read.index()].slow, a.ops[OpKind::Update.index()].slow), (1, 1));
        assert_eq!(a.ops[OpKind::Update.index()].first_error.as_deref(), Some("boom"));
        let kinds: Vec<OpKind> = a.kinds().map(|(k, _)| k).collect();
        assert_eq!(kinds, [OpKind::Read, OpKind::Update]);
        let taken = a.take();
        assert_eq!((taken.count(), a.count(), a.errors(), a.slow()), (3, 0, 0, 0));
    }
}
