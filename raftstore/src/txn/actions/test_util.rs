//! The per-action tests' harness: actions run against a [`MemStore`], their modifications
//! applied when they succeed (as the store applies a command's write batch).

use super::*;
use crate::txn::error::Result;
use crate::txn::lock::Lock;
use crate::txn::mvcc_txn::MvccTxn;
use crate::txn::reader::MvccReader;
use crate::txn::snapshot::MemStore;
use crate::txn::write::Write;

/// The lock TTL of the tests' prewrites.
pub const TTL_MS: u64 = 3_000;

/// A timestamp at `ms` milliseconds of physical time.
pub fn ts(ms: u64) -> u64 {
    pd::tso::compose(ms, 0)
}

/// A store and helpers named after the actions.
#[derive(Default)]
pub struct Store {
    pub mem: MemStore,
}

impl Store {
    fn run<T>(
        &mut self,
        start_ts: u64,
        f: impl FnOnce(&mut MvccTxn, &MvccReader<'_, MemStore>) -> Result<T>,
    ) -> Result<T> {
        let mut txn = MvccTxn::new(start_ts);
        let r = f(&mut txn, &MvccReader::new(&self.mem));
        if r.is_ok() {
            self.mem.apply(txn.into_modifies());
        }
        r
    }

    pub fn props(&self, primary: &[u8], start_ts: u64) -> TxnProps {
        TxnProps { start_ts, primary: primary.to_vec(), lock_ttl_ms: TTL_MS, min_commit_ts: 0, one_pc_commit_ts: None }
    }

    pub fn prewrite(&mut self, props: &TxnProps, m: &Mutation) -> Result<Prewritten> {
        self.run(props.start_ts, |t, r| prewrite(t, r, props, m))
    }

    pub fn prewrite_put(&mut self, key: &[u8], value: &[u8], primary: &[u8], start_ts: u64) -> Result<Prewritten> {
        let props = self.props(primary, start_ts);
        self.prewrite(&props, &Mutation::Put(key.to_vec(), value.to_vec()))
    }

    pub fn commit(&mut self, key: &[u8], start_ts: u64, commit_ts: u64) -> Result<()> {
        self.run(start_ts, |t, r| commit(t, r, key, commit_ts))
    }

    pub fn rollback(&mut self, key: &[u8], start_ts: u64) -> Result<()> {
        self.run(start_ts, |t, r| rollback(t, r, key))
    }

    pub fn cleanup(&mut self, key: &[u8], start_ts: u64, current_ts: u64) -> Result<()> {
        self.run(start_ts, |t, r| cleanup(t, r, key, current_ts))
    }

    pub fn check_txn_status(
        &mut self,
        primary: &[u8],
        start_ts: u64,
        caller_start_ts: u64,
        current_ts: u64,
        rollback_if_not_exist: bool,
    ) -> Result<TxnStatus> {
        self.run(start_ts, |t, r| check_txn_status(t, r, primary, caller_start_ts, current_ts, rollback_if_not_exist))
    }

    pub fn resolve(&mut self, key: &[u8], start_ts: u64, commit_ts: Option<u64>) -> Result<()> {
        self.run(start_ts, |t, r| resolve_lock(t, r, key, commit_ts))
    }

    fn must_commit(&mut self, m: Mutation, start_ts: u64, commit_ts: u64) {
        let key = m.key().to_vec();
        let props = self.props(&key, start_ts);
        self.prewrite(&props, &m).unwrap();
        self.commit(&key, start_ts, commit_ts).unwrap();
    }

    pub fn put(&mut self, key: &[u8], value: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_commit(Mutation::Put(key.to_vec(), value.to_vec()), start_ts, commit_ts)
    }

    pub fn delete(&mut self, key: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_commit(Mutation::Delete(key.to_vec()), start_ts, commit_ts)
    }

    pub fn lock_only(&mut self, key: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_commit(Mutation::Lock(key.to_vec()), start_ts, commit_ts)
    }

    pub fn get(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        get(&MvccReader::new(&self.mem), key, ts, &[])
    }

    pub fn scan(&self, start: &[u8], end: &[u8], limit: usize, ts: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(&MvccReader::new(&self.mem), start, end, limit, ts, &[])
    }

    pub fn gc(&mut self, key: &[u8], safe_point: u64) -> GcStats {
        self.run(0, |t, r| gc(t, r, key, safe_point)).unwrap()
    }

    pub fn lock(&self, key: &[u8]) -> Option<Lock> {
        MvccReader::new(&self.mem).load_lock(key).unwrap()
    }

    pub fn writes(&self, key: &[u8]) -> Vec<(u64, Write)> {
        MvccReader::new(&self.mem).writes_at_or_before(key, u64::MAX, usize::MAX).unwrap()
    }
}
