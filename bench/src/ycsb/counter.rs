//! The insert key sequence shared by every client thread (YCSB's
//! `AcknowledgedCounterGenerator`).
//!
//! Inserts take consecutive ordinals from one counter; they complete out of order, so reads
//! may only pick ordinals up to the *acknowledged limit*: the highest ordinal below which
//! every insert has completed. Completions mark a slot in a ring; whoever takes the
//! (non-blocking) try-lock advances the limit over the marked slots. Nothing waits: a thread
//! that does not get the lock leaves its mark for the holder or the next acknowledger.
//!
//! This is the only state the client threads share during the run phase; inserts are at
//! most a few per cent of the operations, so the atomics are off the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Slots of the acknowledgement ring: the most inserts that may be outstanding beyond the
/// limit (YCSB uses the same size).
const WINDOW: u64 = 1 << 20;

/// A counter of insert ordinals with an acknowledged limit.
pub struct AcknowledgedCounter {
    next: AtomicU64,
    limit: AtomicU64,
    window: Box<[AtomicBool]>,
    advancing: AtomicBool,
}

impl AcknowledgedCounter {
    /// Ordinals handed out start at `start` (≥ 1: ordinal `start - 1` must already exist);
    /// the limit starts at `start - 1`.
    pub fn new(start: u64) -> Self {
        assert!(start >= 1, "the insert sequence starts after at least one loaded record");
        AcknowledgedCounter {
            next: AtomicU64::new(start),
            limit: AtomicU64::new(start - 1),
            window: (0..WINDOW).map(|_| AtomicBool::new(false)).collect(),
            advancing: AtomicBool::new(false),
        }
    }

    /// The next ordinal to insert.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The highest ordinal below which (inclusive) every insert has completed.
    pub fn last(&self) -> u64 {
        self.limit.load(Ordering::SeqCst)
    }

    /// Marks the insert of `ordinal` complete (successful or not: YCSB acknowledges failed
    /// inserts too, so that one failure does not freeze the key space) and advances the
    /// limit if it can.
    pub fn acknowledge(&self, ordinal: u64) {
        let last = self.last();
        if ordinal <= last {
            return;
        }
        if ordinal - last >= WINDOW {
            // More than WINDOW inserts outstanding: cannot happen with bounded concurrency
            // (threads × concurrency ≪ WINDOW); losing the mark only stalls `last`.
            tracing::warn!(ordinal, last, "insert acknowledgement window exceeded");
            return;
        }
        // SeqCst on the mark, the try-lock and the re-check: a mark set while another thread
        // holds the lock is either seen by that thread's re-check after it unlocks, or the
        // marking thread sees the lock free and advances itself (no store-buffer reordering).
        self.slot(ordinal).store(true, Ordering::SeqCst);
        while self.advancing.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            let mut index = self.last() + 1;
            while self.slot(index).load(Ordering::SeqCst) {
                self.slot(index).store(false, Ordering::SeqCst);
                index += 1;
            }
            self.limit.store(index - 1, Ordering::SeqCst);
            self.advancing.store(false, Ordering::SeqCst);
            if !self.slot(index).load(Ordering::SeqCst) {
                break;
            }
        }
    }

    fn slot(&self, ordinal: u64) -> &AtomicBool {
        &self.window[(ordinal % WINDOW) as usize]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn limit_advances_over_contiguous_acknowledgements() {
        let c = AcknowledgedCounter::new(100);
        assert_eq!(c.last(), 99);
        let (a, b, d) = (c.next(), c.next(), c.next());
        assert_eq!((a, b, d), (100, 101, 102));
        c.acknowledge(101);
        assert_eq!(c.last(), 99, "100 is still outstanding");
        c.acknowledge(102);
        assert_eq!(c.last(), 99);
        c.acknowledge(100);
        assert_eq!(c.last(), 102);
        c.acknowledge(100); // a repeat is harmless
        assert_eq!(c.last(), 102);
    }

    #[test]
    fn concurrent_acknowledgements_reach_the_end() {
        let c = Arc::new(AcknowledgedCounter::new(1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        let n = c.next();
                        c.acknowledge(n);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.last(), 200_000);
    }
}
