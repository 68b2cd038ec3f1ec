//! What the transaction layer reads from and what it asks to be written: a consistent view
//! of the three column families, and modifications to apply in one write batch.
//!
//! The store implements [`Snapshot`] over its RocksDB; [`MemStore`] is the same contract
//! over ordered maps, the reference the per-action tests run against.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::error::Result;
pub use super::types::Cf;

/// A consistent, read-only view of the column families.
pub trait Snapshot {
    /// The value of `key` in `cf`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Pairs of `cf` with `from <= key < to` (`to` = `None`: no end), ascending, at most
    /// `limit`.
    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// One change an action asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modify {
    /// Set `key` in `cf`.
    Put {
        /// The column family.
        cf: Cf,
        /// The key (encoded, versioned where the family is).
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` from `cf`.
    Delete {
        /// The column family.
        cf: Cf,
        /// The key.
        key: Vec<u8>,
    },
}

impl Modify {
    /// The column family it changes.
    pub fn cf(&self) -> Cf {
        match self {
            Modify::Put { cf, .. } | Modify::Delete { cf, .. } => *cf,
        }
    }

    /// The key it changes.
    pub fn key(&self) -> &[u8] {
        match self {
            Modify::Put { key, .. } | Modify::Delete { key, .. } => key,
        }
    }
}

/// The column families in ordered maps: a [`Snapshot`] of itself, changed by [`MemStore::apply`].
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    cfs: BTreeMap<Cf, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// Applies modifications in order.
    pub fn apply(&mut self, modifies: impl IntoIterator<Item = Modify>) {
        for m in modifies {
            match m {
                Modify::Put { cf, key, value } => {
                    self.cfs.entry(cf).or_default().insert(key, value);
                }
                Modify::Delete { cf, key } => {
                    if let Some(map) = self.cfs.get_mut(&cf) {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    /// How many keys `cf` holds.
    pub fn len(&self, cf: Cf) -> usize {
        self.cfs.get(&cf).map_or(0, BTreeMap::len)
    }
}

impl Snapshot for MemStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.cfs.get(&cf).and_then(|m| m.get(key)).cloned())
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(map) = self.cfs.get(&cf) else {
            return Ok(Vec::new());
        };
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        if to.is_some_and(|t| t <= from) {
            return Ok(Vec::new());
        }
        Ok(map
            .range::<[u8], _>((Bound::Included(from), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
