//! The in-memory index of the log: for every region, where each live entry is on disk,
//! its term, and — for recent entries — its data.
//!
//! An entry's location is `(batch sequence, offset of its record in the batch)`; the engine
//! maps a batch sequence to a segment and file offset ([`super::segments`]). Data of recent
//! entries stays cached under a byte budget and is evicted oldest-first; entries of batches
//! that are not on disk yet are never evicted (there is nowhere else to read them from).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;

use super::format::HardState;

/// Cached data released by an index operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freed {
    /// Bytes of entry data.
    pub bytes: usize,
    /// Entries whose data was cached.
    pub entries: usize,
}

/// A hasher for region ids: they are small integers handed out by PD, so a multiply-shift
/// spreads them well, at a fraction of SipHash's cost on the append path.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Map from region id.
pub type RegionMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Where an entry lives and what we know of it without reading it.
#[derive(Debug, Clone)]
pub struct EntryMeta {
    /// Raft term.
    pub term: u64,
    /// Batch holding the entry's record.
    pub batch: u64,
    /// Offset of the record from the start of the batch.
    pub rec_off: u32,
    /// Length of the record (header included).
    pub rec_len: u32,
    /// Cached data, if any.
    pub data: Option<Bytes>,
}

/// One region's log.
#[derive(Debug, Default)]
pub struct RegionLog {
    /// Index of `entries[0]`; when empty, the index the next entry must have (0 = any).
    pub first: u64,
    /// Live entries, contiguous from `first`.
    pub entries: VecDeque<EntryMeta>,
    /// The latest hard state, and the batch it was written in.
    pub hard_state: Option<(HardState, u64)>,
}

impl RegionLog {
    /// Index of the last entry (`first - 1` when empty).
    pub fn last_index(&self) -> u64 {
        // `apply_append` keeps every index within u64: no overflow even at `first` = u64::MAX.
        match self.entries.len() as u64 {
            0 => self.first.saturating_sub(1),
            n => self.first.saturating_add(n - 1),
        }
    }

    /// The entry at `index`, if live.
    pub fn get(&self, index: u64) -> Option<&EntryMeta> {
        if index < self.first {
            return None;
        }
        self.entries.get((index - self.first) as usize)
    }

    /// The oldest batch this region still needs.
    pub fn oldest_batch(&self) -> Option<u64> {
        let e = self.entries.front().map(|m| m.batch);
        let h = self.hard_state.map(|(_, b)| b);
        match (e, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops entries at and after `index`; returns the cached data dropped.
    pub fn truncate_from(&mut self, index: u64) -> Freed {
        if index < self.first {
            let freed = cached_bytes(self.entries.iter());
            self.entries.clear();
            return freed;
        }
        let keep = (index - self.first) as usize;
        if keep >= self.entries.len() {
            return Freed::default();
        }
        let freed = cached_bytes(self.entries.range(keep..));
        self.entries.truncate(keep);
        freed
    }

    /// Drops entries below `upto`; when `upto` is past the end, the log becomes empty and
    /// the next entry must be `upto`. Returns the cached data dropped.
    pub fn compact(&mut self, upto: u64) -> Freed {
        if upto <= self.first {
            return Freed::default();
        }
        let n = ((upto - self.first) as usize).min(self.entries.len());
        let freed = cached_bytes(self.entries.range(..n));
        self.entries.drain(..n);
        self.first = upto;
        freed
    }
}

/// The cached data held by some entries.
pub fn cached_bytes<'a>(it: impl Iterator<Item = &'a EntryMeta>) -> Freed {
    let mut f = Freed::default();
    for m in it {
        if let Some(d) = &m.data {
            f.bytes += d.len();
            f.entries += 1;
        }
    }
    f
}

/// The regions of one log and the data-cache budget.
#[derive(Debug, Default)]
pub struct Index {
    /// Every region with a log.
    pub regions: RegionMap<RegionLog>,
    /// Cached entries, oldest first: `(region, index, batch)`. Entries dropped by
    /// truncation or compaction stay here until evicted or swept.
    lru: VecDeque<(u64, u64, u64)>,
    /// Bytes of cached entry data.
    pub cached: usize,
    /// Entries with cached data.
    pub cached_entries: usize,
    /// The budget for `cached`.
    pub budget: usize,
}

impl Index {
    /// An empty index with a cache budget in bytes.
    pub fn new(budget: usize) -> Self {
        Index { budget, ..Default::default() }
    }

    /// Checks that an append of entries from `first_index` may go to `region`: it must not
    /// start below the region's first index or leave a gap after its last. An empty log takes
    /// any start (a new region, or one reset by a snapshot).
    pub fn check_append(&self, region: u64, first_index: u64) -> Result<(), String> {
        let Some(r) = self.regions.get(&region) else {
            return Ok(());
        };
        if r.entries.is_empty() {
            return Ok(());
        }
        if first_index < r.first {
            return Err(format!("append at {first_index} is below the first index {}", r.first));
        }
        if first_index > r.last_index().saturating_add(1) {
            return Err(format!("append at {first_index} leaves a gap after the last index {}", r.last_index()));
        }
        Ok(())
    }

    /// Applies an append: entries from `first_index` replace any at and after it; the hard
    /// state, if given, replaces the region's.
    ///
    /// `replay` is set during recovery. A purge may have deleted the segments holding entries
    /// that an append of a remaining segment overwrote (they were all overwritten or
    /// compacted later, or the purge would not have happened), so during replay an append
    /// below the region's first index legitimately starts the region's log afresh there.
    pub fn apply_append(
        &mut self,
        region: u64,
        first_index: u64,
        metas: impl ExactSizeIterator<Item = EntryMeta>,
        hard_state: Option<(HardState, u64)>,
        replay: bool,
    ) -> Result<(), String> {
        if metas.len() > 0 {
            // Entries are contiguous from `first_index`: the last must still be an index. (A
            // replayed record states only its first index and a count.)
            if first_index.checked_add(metas.len() as u64 - 1).is_none() {
                return Err(format!("{} entries from index {first_index} pass u64::MAX", metas.len()));
            }
            let below_first = self.regions.get(&region).is_some_and(|r| !r.entries.is_empty() && first_index < r.first);
            if !(replay && below_first) {
                self.check_append(region, first_index)?;
            }
            let r = self.regions.entry(region).or_default();
            if r.entries.is_empty() || below_first {
                let freed = cached_bytes(r.entries.iter());
                r.entries.clear();
                self.cached_dropped(freed);
                let r = self.regions.entry(region).or_default();
                r.first = first_index;
            } else {
                let freed = r.truncate_from(first_index);
                self.cached_dropped(freed);
            }
            let r = self.regions.entry(region).or_default();
            r.entries.extend(metas);
        }
        if let Some(hs) = hard_state {
            self.regions.entry(region).or_default().hard_state = Some(hs);
        }
        Ok(())
    }

    /// Notes that entry `(region, index)` of `batch` has cached data.
    pub fn cached_insert(&mut self, region: u64, index: u64, batch: u64, len: usize) {
        self.cached += len;
        self.cached_entries += 1;
        self.lru.push_back((region, index, batch));
        if self.lru.len() > 2 * self.cached_entries + 1024 {
            self.sweep();
        }
    }

    /// Subtracts dropped data from the cache account.
    pub fn cached_dropped(&mut self, freed: Freed) {
        self.cached = self.cached.saturating_sub(freed.bytes);
        self.cached_entries = self.cached_entries.saturating_sub(freed.entries);
    }

    /// The cached entry `(region, index)` written in `batch`, if it is still there.
    fn cached_meta(&mut self, region: u64, index: u64, batch: u64) -> Option<&mut EntryMeta> {
        let r = self.regions.get_mut(&region)?;
        let first = r.first;
        let meta = r.entries.get_mut(index.checked_sub(first)? as usize)?;
        // The slot may hold a newer entry written after this one was cached.
        (meta.batch == batch && meta.data.is_some()).then_some(meta)
    }

    /// Drops queue items whose entry is gone (truncated, compacted, overwritten), so the
    /// queue stays proportional to the cache.
    fn sweep(&mut self) {
        let mut lru = std::mem::take(&mut self.lru);
        lru.retain(|&(region, index, batch)| self.cached_meta(region, index, batch).is_some());
        self.lru = lru;
    }

    /// Evicts cached data oldest-first until within budget; never evicts entries of batches
    /// after `durable_batch` (not readable from disk yet).
    pub fn evict(&mut self, durable_batch: Option<u64>) {
        while self.cached > self.budget {
            let Some(&(region, index, batch)) = self.lru.front() else { break };
            if durable_batch.is_none_or(|d| batch > d) {
                break;
            }
            self.lru.pop_front();
            if let Some(d) = self.cached_meta(region, index, batch).and_then(|m| m.data.take()) {
                self.cached = self.cached.saturating_sub(d.len());
                self.cached_entries = self.cached_entries.saturating_sub(1);
            }
        }
    }

    /// Length of the eviction queue (for tests).
    pub fn queue_len(&self) -> usize {
        self.lru.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(batch: u64, data: &'static [u8]) -> EntryMeta {
        EntryMeta { term: 1, batch, rec_off: 0, rec_len: 0, data: Some(Bytes::from_static(data)) }
    }

    #[test]
    fn truncate_and_compact() {
        let mut r = RegionLog { first: 5, ..Default::default() };
        for b in 0..5 {
            r.entries.push_back(meta(b, b"xy"));
        }
        assert_eq!(r.last_index(), 9);
        assert_eq!(r.truncate_from(8), Freed { bytes: 4, entries: 2 });
        assert_eq!(r.last_index(), 7);
        assert_eq!(r.compact(6).bytes, 2);
        assert_eq!((r.first, r.entries.len()), (6, 2));
        assert_eq!(r.compact(20).bytes, 4);
        assert_eq!((r.first, r.last_index(), r.entries.len()), (20, 19, 0));
        assert_eq!(r.oldest_batch(), None);
    }

    /// Found by the `log_recovery` fuzz target: an append at the top of the index range
    /// overflowed `last_index` and `check_append` (a panic with overflow checks on).
    #[test]
    fn indexes_at_the_top_of_the_range() {
        let metas = |n: usize| (0..n).map(|_| meta(1, b"x")).collect::<Vec<_>>().into_iter();
        let mut idx = Index::new(0);
        idx.apply_append(1, u64::MAX, metas(1), None, true).unwrap();
        let r = &idx.regions[&1];
        assert_eq!((r.first, r.last_index(), r.entries.len()), (u64::MAX, u64::MAX, 1));
        assert!(r.get(u64::MAX).is_some());
        idx.check_append(1, u64::MAX).unwrap();
        idx.apply_append(1, u64::MAX, metas(1), None, false).unwrap();
        // Entries past u64::MAX are refused and change nothing.
        let err = idx.apply_append(1, u64::MAX - 1, metas(3), None, true).unwrap_err();
        assert!(err.contains("pass u64::MAX"), "{err}");
        assert!(idx.apply_append(2, u64::MAX, metas(2), None, true).is_err());
        assert!(!idx.regions.contains_key(&2));
        assert_eq!(idx.regions[&1].last_index(), u64::MAX);
        let empty = RegionLog { first: 0, ..Default::default() };
        assert_eq!(empty.last_index(), 0);
    }

    #[test]
    fn eviction_respects_durability_and_budget() {
        let mut idx = Index::new(4);
        let mut r = RegionLog { first: 1, ..Default::default() };
        for i in 0..4u64 {
            r.entries.push_back(meta(i, b"ab"));
        }
        idx.regions.insert(9, r);
        for i in 0..4u64 {
            idx.cached_insert(9, i + 1, i, 2);
        }
        idx.evict(Some(0));
        assert_eq!(idx.cached, 6, "only batch 0 is durable");
        idx.evict(Some(10));
        assert_eq!(idx.cached, 4);
        let r = &idx.regions[&9];
        assert!(r.entries[0].data.is_none() && r.entries[1].data.is_none());
        assert!(r.entries[2].data.is_some() && r.entries[3].data.is_some());
    }

    #[test]
    fn queue_stays_proportional_to_the_cache() {
        let mut idx = Index::new(usize::MAX);
        idx.regions.insert(1, RegionLog::default());
        for i in 1..=100_000u64 {
            let r = idx.regions.get_mut(&1).unwrap();
            if r.entries.is_empty() {
                r.first = i;
            }
            r.entries.push_back(meta(i, b"x"));
            idx.cached_insert(1, i, i, 1);
            if i % 100 == 0 {
                // Raft log GC: keep the last 10 entries.
                let freed = idx.regions.get_mut(&1).unwrap().compact(i - 9);
                idx.cached_dropped(freed);
            }
        }
        assert!(idx.cached_entries <= 100);
        assert!(idx.queue_len() < 2 * 100 + 1024 + 1, "queue grew to {}", idx.queue_len());
    }
}
