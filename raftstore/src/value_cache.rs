//! The shard's cache of hot values: user key → value, in memory, for point reads that never
//! touch RocksDB.
//!
//! A get served by a leader under lease looks here first; a value RocksDB returns from memory
//! (memtable or block cache) is added. The cache is written through: every applied batch
//! updates the keys it wrote (a put stores the new value, a delete removes the key), after the
//! batch is in RocksDB — the shard is single-threaded, so no read can see the cache and RocksDB
//! disagree. Anything else that changes data under the cache (a range delete, a snapshot, a
//! region arriving from or leaving for another shard, an apply batch written after a stall)
//! clears it whole: those are rare.
//!
//! Eviction is CLOCK (second chance) by bytes: a hit sets the entry's reference bit; the hand
//! evicts the oldest entry whose bit is clear, clearing bits as it passes.

use std::collections::VecDeque;
use std::hash::BuildHasherDefault;

use bytes::Bytes;
use rustc_hash::FxHasher;

type Map<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Bytes an entry costs besides its key and value (map slot, ring slot, `Bytes` headers).
const ENTRY_OVERHEAD: usize = 96;

struct Entry {
    value: Bytes,
    referenced: bool,
}

/// Counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that were not.
    pub misses: u64,
    /// Entries evicted for room.
    pub evictions: u64,
    /// Times the whole cache was cleared.
    pub clears: u64,
}

/// A byte-bounded CLOCK cache of values by user key.
pub struct ValueCache {
    map: Map<Bytes, Entry>,
    /// Keys in insertion order; may hold keys removed since (skipped by the hand).
    ring: VecDeque<Bytes>,
    bytes: usize,
    capacity: usize,
    stats: CacheStats,
}

fn cost(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl ValueCache {
    /// A cache of at most `capacity` bytes (0: disabled, every lookup misses).
    pub fn new(capacity: usize) -> Self {
        ValueCache { map: Map::default(), ring: VecDeque::new(), bytes: 0, capacity, stats: CacheStats::default() }
    }

    /// The value of `key`, if cached.
    pub fn get(&mut self, key: &[u8]) -> Option<Bytes> {
        match self.map.get_mut(key) {
            Some(e) => {
                e.referenced = true;
                self.stats.hits += 1;
                Some(e.value.clone())
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `value` as `key`'s (replacing what was there).
    pub fn insert(&mut self, key: Bytes, value: Bytes) {
        if self.capacity == 0 || cost(&key, &value) > self.capacity {
            self.remove(&key);
            return;
        }
        match self.map.get_mut(&key[..]) {
            Some(e) => {
                self.bytes = self.bytes - e.value.len() + value.len();
                e.value = value;
                e.referenced = true;
            }
            None => {
                self.bytes += cost(&key, &value);
                self.ring.push_back(key.clone());
                self.map.insert(key, Entry { value, referenced: false });
            }
        }
        self.evict();
        if self.ring.len() > 2 * self.map.len() + 1024 {
            // Removed keys pile up in the ring when nothing is evicted: rebuild it.
            self.ring = self.map.keys().cloned().collect();
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= cost(key, &e.value);
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        if !self.map.is_empty() {
            self.stats.clears += 1;
        }
        self.map.clear();
        self.ring.clear();
        self.bytes = 0;
    }

    fn evict(&mut self) {
        while self.bytes > self.capacity {
            let Some(key) = self.ring.pop_front() else { break };
            let Some(e) = self.map.get_mut(&key[..]) else { continue };
            if e.referenced {
                e.referenced = false;
                self.ring.push_back(key);
            } else {
                self.remove(&key);
                self.stats.evictions += 1;
            }
        }
    }

    /// Bytes held (keys, values and overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn hits_misses_updates_and_removes() {
        let mut c = ValueCache::new(1 << 20);
        assert_eq!(c.get(b"k"), None);
        c.insert(b("k"), b("v1"));
        assert_eq!(c.get(b"k"), Some(b("v1")));
        c.insert(b("k"), b("v22"));
        assert_eq!(c.get(b"k"), Some(b("v22")));
        assert_eq!((c.len(), c.bytes()), (1, 1 + 3 + ENTRY_OVERHEAD));
        c.remove(b"k");
        assert_eq!((c.get(b"k"), c.len(), c.bytes()), (None, 0, 0));
        c.insert(b("a"), b("1"));
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.stats(), CacheStats { hits: 2, misses: 2, evictions: 0, clears: 1 });
    }

    #[test]
    fn eviction_keeps_recently_read_entries_and_the_byte_bound() {
        let per = cost(b"k0", b"vv");
        let mut c = ValueCache::new(per * 3);
        for k in ["k0", "k1", "k2"] {
            c.insert(b(k), b("vv"));
        }
        assert_eq!(c.get(b"k0"), Some(b("vv")), "k0 read: it gets a second chance");
        c.insert(b("k3"), b("vv"));
        assert!(c.bytes() <= per * 3);
        assert_eq!(c.get(b"k1"), None, "the oldest unread entry went first");
        assert!(c.get(b"k0").is_some() && c.get(b"k3").is_some());
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn disabled_or_too_big_values_are_not_kept() {
        let mut off = ValueCache::new(0);
        off.insert(b("k"), b("v"));
        assert_eq!(off.get(b"k"), None);
        let mut small = ValueCache::new(200);
        small.insert(b("k"), b("v"));
        small.insert(b("k"), Bytes::from(vec![0u8; 500]));
        assert_eq!(small.get(b"k"), None, "a value that cannot fit replaces nothing stale");
    }

    #[test]
    fn removed_keys_do_not_grow_the_ring_forever() {
        let mut c = ValueCache::new(1 << 30);
        for i in 0..10_000 {
            let k = Bytes::from(format!("k{}", i % 10));
            c.insert(k.clone(), b("v"));
            c.remove(&k);
        }
        assert!(c.ring.len() <= 2 * c.map.len() + 1024, "ring of {}", c.ring.len());
    }
}
