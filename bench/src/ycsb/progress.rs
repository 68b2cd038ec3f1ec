//! The progress line: every interval, once each running thread has sent its measurements of
//! that interval, one line on stderr with the interval's throughput, each operation's p99,
//! and failures.

use std::collections::BTreeMap;
use std::time::Duration;

use super::stats::PhaseStats;
use super::worker::Phase;

/// Collects the threads' interval reports and prints complete intervals.
pub struct Progress {
    phase: Phase,
    every: Duration,
    alive: usize,
    pending: BTreeMap<u32, (usize, bool, PhaseStats)>,
}

impl Progress {
    /// For `threads` threads reporting every `every`.
    pub fn new(phase: Phase, threads: usize, every: Duration) -> Self {
        Progress { phase, every, alive: threads, pending: BTreeMap::new() }
    }

    /// Adds one thread's report of interval `tick`.
    pub fn add(&mut self, tick: u32, warmup: bool, stats: &PhaseStats) {
        let e = self.pending.entry(tick).or_insert_with(|| (0, warmup, PhaseStats::default()));
        e.0 += 1;
        e.1 &= warmup;
        e.2.merge(stats);
        self.flush();
    }

    /// A thread finished: later intervals wait for one report less.
    pub fn thread_done(&mut self) {
        self.alive = self.alive.saturating_sub(1);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().0 < self.alive.max(1) {
                return;
            }
            let tick = *entry.key();
            let (_, warmup, stats) = entry.remove();
            eprintln!("{}", self.line(tick, warmup, &stats));
        }
    }

    /// The progress line of interval `tick`.
    pub fn line(&self, tick: u32, warmup: bool, stats: &PhaseStats) -> String {
        let secs = self.every.as_secs_f64();
        let mut line = format!(
            "[{:>6.1}s] {:<4} {:>10.1} ops/s",
            secs * tick as f64,
            self.phase.name(),
            stats.count() as f64 / secs
        );
        for (kind, s) in stats.kinds() {
            let p99 = if s.hist.is_empty() { 0.0 } else { s.hist.value_at_quantile(0.99) as f64 / 1000.0 };
            line.push_str(&format!("  {} p99 {:.0} us", kind.name(), p99));
        }
        line.push_str(&format!("  errors {}  >1s {}", stats.errors(), stats.slow()));
        if warmup {
            line.push_str("  (warm-up)");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ycsb::ops::OpKind;

    #[test]
    fn lines_show_rate_p99_and_errors() {
        let p = Progress::new(Phase::Run, 1, Duration::from_secs(2));
        let mut s = PhaseStats::default();
        for _ in 0..100 {
            s.ok(OpKind::Read, Duration::from_micros(500));
        }
        s.failed(OpKind::Update, "x", Duration::from_millis(2));
        let line = p.line(3, true, &s);
        assert!(line.starts_with("[   6.0s] run        50.0 ops/s"), "{line}");
        assert!(line.contains("READ p99 500 us") && line.contains("UPDATE p99 0 us"), "{line}");
        assert!(line.ends_with("errors 1  >1s 0  (warm-up)"), "{line}");
    }
}
