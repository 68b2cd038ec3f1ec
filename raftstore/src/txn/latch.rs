//! Latches: commands on the same keys run one at a time, in arrival order.
//!
//! A shard is single-threaded, so a latch is a queue, not a mutex: each key hashes to a
//! slot holding the ids of the commands that want it, the first one owning it. A command
//! runs once it is first in every slot of its keys; it takes them in ascending slot order
//! (no deadlock) and waits in the first slot it does not own. Releasing hands each slot to
//! the next command in line, which then tries again.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

/// The slots a command needs and how many of them it owns.
#[derive(Debug, Clone)]
pub struct LatchSet {
    slots: Vec<u64>,
    owned: usize,
}

impl LatchSet {
    /// The slots of `keys` (sorted, without repeats).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut slots: Vec<u64> = keys
            .into_iter()
            .map(|k| {
                let mut h = FxHasher::default();
                k.hash(&mut h);
                h.finish()
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        LatchSet { slots, owned: 0 }
    }

    /// Whether the command owns all its slots.
    pub fn acquired(&self) -> bool {
        self.owned == self.slots.len()
    }
}

/// The latch slots of one shard.
#[derive(Debug, Default)]
pub struct Latches {
    queues: FxHashMap<u64, VecDeque<u64>>,
}

impl Latches {
    /// No latches held.
    pub fn new() -> Self {
        Latches::default()
    }

    /// Takes what it can of `set` for command `cid`: true once it owns every slot (it may
    /// run); false when it waits (it is called again when a slot is handed to it).
    pub fn acquire(&mut self, set: &mut LatchSet, cid: u64) -> bool {
        while let Some(&slot) = set.slots.get(set.owned) {
            let q = self.queues.entry(slot).or_default();
            if !q.contains(&cid) {
                q.push_back(cid);
            }
            if q.front() != Some(&cid) {
                return false;
            }
            set.owned += 1;
        }
        true
    }

    /// Releases the slots command `cid` owns in `set`; returns the commands that were next
    /// in line, to call [`Latches::acquire`] for again.
    pub fn release(&mut self, set: &LatchSet, cid: u64) -> Vec<u64> {
        let mut wake = Vec::new();
        for slot in &set.slots[..set.owned] {
            let Some(q) = self.queues.get_mut(slot) else { continue };
            if q.front() == Some(&cid) {
                q.pop_front();
            }
            match q.front() {
                Some(&next) => {
                    if !wake.contains(&next) {
                        wake.push(next);
                    }
                }
                None => {
                    self.queues.remove(slot);
                }
            }
        }
        wake
    }

    /// Slots with a command holding or waiting (0 when idle).
    pub fn busy_slots(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_on_shared_keys_run_in_arrival_order() {
        let mut l = Latches::new();
        let mut a = LatchSet::new([&b"x"[..], b"y"]);
        let mut b = LatchSet::new([&b"y"[..], b"z"]);
        let mut c = LatchSet::new([&b"w"[..]]);
        assert!(l.acquire(&mut a, 1));
        assert!(!l.acquire(&mut b, 2));
        assert!(l.acquire(&mut c, 3), "disjoint keys do not wait");
        assert_eq!(l.release(&a, 1), vec![2]);
        assert!(l.acquire(&mut b, 2));
        assert!(l.release(&b, 2).is_empty());
        assert!(l.release(&c, 3).is_empty());
        assert_eq!(l.busy_slots(), 0);
    }

    #[test]
    fn a_waiter_keeps_its_place_while_others_arrive() {
        let mut l = Latches::new();
        let mut a = LatchSet::new([&b"k"[..]]);
        let mut b = LatchSet::new([&b"k"[..]]);
        let mut c = LatchSet::new([&b"k"[..], b"k"]);
        assert_eq!(c.slots.len(), 1);
        assert!(l.acquire(&mut a, 1));
        assert!(!l.acquire(&mut b, 2));
        assert!(!l.acquire(&mut c, 3));
        assert!(!l.acquire(&mut c, 3), "asking again does not jump the queue");
        assert_eq!(l.release(&a, 1), vec![2]);
        assert!(!l.acquire(&mut c, 3));
        assert!(l.acquire(&mut b, 2));
        assert_eq!(l.release(&b, 2), vec![3]);
        assert!(l.acquire(&mut c, 3));
        l.release(&c, 3);
        assert_eq!(l.busy_slots(), 0);
    }
}
