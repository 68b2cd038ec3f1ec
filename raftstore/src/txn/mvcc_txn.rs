//! The modifications one command of a transaction makes, in MVCC terms.

use super::codec::{encode_key, versioned};
use super::lock::Lock;
use super::snapshot::{Cf, Modify};
use super::write::Write;

/// Collects what a command of the transaction started at `start_ts` writes. Keys are user
/// keys; the encoding is applied here.
#[derive(Debug)]
pub struct MvccTxn {
    /// The transaction's start timestamp.
    pub start_ts: u64,
    modifies: Vec<Modify>,
}

impl MvccTxn {
    /// A transaction's command with nothing written yet.
    pub fn new(start_ts: u64) -> Self {
        MvccTxn { start_ts, modifies: Vec::new() }
    }

    /// Writes (or replaces) the lock of `key`.
    pub fn put_lock(&mut self, key: &[u8], lock: &Lock) {
        self.modifies.push(Modify::Put { cf: Cf::Lock, key: encode_key(key), value: lock.encode() });
    }

    /// Removes the lock of `key`.
    pub fn unlock(&mut self, key: &[u8]) {
        self.modifies.push(Modify::Delete { cf: Cf::Lock, key: encode_key(key) });
    }

    /// Stores a long value of this transaction under `key @ start_ts`.
    pub fn put_value(&mut self, key: &[u8], value: Vec<u8>) {
        self.modifies.push(Modify::Put { cf: Cf::Default, key: versioned(&encode_key(key), self.start_ts), value });
    }

    /// Removes the long value written under `key @ start_ts`.
    pub fn delete_value(&mut self, key: &[u8], start_ts: u64) {
        self.modifies.push(Modify::Delete { cf: Cf::Default, key: versioned(&encode_key(key), start_ts) });
    }

    /// Writes a commit or rollback record under `key @ ts`.
    pub fn put_write(&mut self, key: &[u8], ts: u64, write: &Write) {
        self.modifies.push(Modify::Put { cf: Cf::Write, key: versioned(&encode_key(key), ts), value: write.encode() });
    }

    /// Removes the record under `key @ ts`.
    pub fn delete_write(&mut self, key: &[u8], ts: u64) {
        self.modifies.push(Modify::Delete { cf: Cf::Write, key: versioned(&encode_key(key), ts) });
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.modifies.is_empty()
    }

    /// The modifications, in order.
    pub fn into_modifies(self) -> Vec<Modify> {
        self.modifies
    }

    /// The modifications so far.
    pub fn modifies(&self) -> &[Modify] {
        &self.modifies
    }
}
