//! A shard's RocksDB: the state machine and the regions' metadata.
//!
//! Writes of applied entries go with the WAL off (the raft log is the WAL) and
//! `no_slowdown`: they only touch the memtable, so they run inline on the shard. When RocksDB
//! would stall (`Incomplete`), the batch comes back unwritten and is written on the blocking
//! pool, never on the executor (the batch is borrowed by the write: no copy is kept in case). Writes that must be durable on their own (a snapshot's data, a region handed
//! over from another shard, bootstrap) use the WAL with sync, on the blocking pool. Flushes
//! (which make WAL-less writes durable) also run on the blocking pool.
//!
//! Column families: `default` holds region metadata and raw KV data (`z` + key); the
//! transactional data of [`crate::txn`] lives in `txn_default`, `txn_lock` and `txn_write`
//! (`z` + MVCC-encoded key), so the two APIs never see each other's keys. A region's data is
//! its key range in all four ([`KvEngine::clear_region`], [`OwnedSnapshot::scan_region`]).

use std::cell::{Ref, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::config::StorageConfig;
use crate::error::{Result, StoreError};
use crate::keys;
use crate::txn::{self, codec, Cf};
use crate::value_cache::{CacheStats, ValueCache};
use net::proto::metapb::Region;
use net::proto::raft_serverpb::{RaftApplyState, RegionLocalState};

/// A shard's RocksDB. Cheap to clone; shard-local. [`KvEngine::close`] releases the database
/// even while clones remain (tasks left over from a stopped shard then get
/// `StoreError::ShuttingDown`), so that a restart in the same process can open it again.
#[derive(Clone)]
pub struct KvEngine {
    slot: Rc<RefCell<Option<Arc<DB>>>>,
    /// Hot values by user key, written through by applied batches.
    values: Rc<RefCell<ValueCache>>,
    path: PathBuf,
}

fn engine_err(e: rocksdb::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// Why [`KvEngine::write`] did not write.
pub enum WriteError {
    /// RocksDB would have made the write wait (a write stall); the batch, unwritten.
    Stalled(WriteBatch),
    /// The write failed.
    Failed(StoreError),
}

impl std::fmt::Debug for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Stalled(b) => write!(f, "Stalled({} bytes)", b.size_in_bytes()),
            WriteError::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Stalled(_) => f.write_str("RocksDB write stall"),
            WriteError::Failed(e) => e.fmt(f),
        }
    }
}

/// A region's metadata as stored.
#[derive(Debug, Clone)]
pub struct StoredRegion {
    /// The region state.
    pub state: RegionLocalState,
    /// The apply state, if written.
    pub apply: Option<RaftApplyState>,
}

impl KvEngine {
    /// Opens (creating) the database at `path`, with the store's shared block cache.
    pub fn open(path: &Path, cache: &Cache, cfg: &StorageConfig) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Io(format!("create {}: {e}", path.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_write_buffer_size(cfg.write_buffer_mb << 20);
        opts.set_max_background_jobs(2);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        if cfg.bytes_per_sync_kb > 0 {
            opts.set_bytes_per_sync(cfg.bytes_per_sync_kb << 10);
        }
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(cache);
        if cfg.bloom_bits_per_key > 0 {
            table.set_bloom_filter(f64::from(cfg.bloom_bits_per_key), false);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        }
        opts.set_block_based_table_factory(&table);
        opts.create_missing_column_families(true);
        // Writes skip RocksDB's WAL (the raft log is the WAL), so a flush must persist every
        // column family up to one sequence number: otherwise the default family's apply state
        // could be flushed past transactional writes still in another family's memtable.
        opts.set_atomic_flush(true);
        let families = std::iter::once(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
            .chain(Cf::ALL.iter().map(|cf| cf.name()))
            .map(|name| ColumnFamilyDescriptor::new(name, opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, families)
            .map_err(|e| StoreError::Engine(format!("open {}: {e}", path.display())))?;
        Ok(KvEngine {
            slot: Rc::new(RefCell::new(Some(Arc::new(db)))),
            values: Rc::new(RefCell::new(ValueCache::new(cfg.value_cache_mb << 20))),
            path: path.to_path_buf(),
        })
    }

    fn db(&self) -> Result<Ref<'_, Arc<DB>>> {
        Ref::filter_map(self.slot.borrow(), |s| s.as_ref()).map_err(|_| StoreError::ShuttingDown)
    }

    fn db_arc(&self) -> Result<Arc<DB>> {
        Ok(self.db()?.clone())
    }

    /// Releases the database (flushing nothing: WAL-less writes not flushed are replayed
    /// from the raft log at the next open).
    pub fn close(&self) {
        self.slot.borrow_mut().take();
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db()?.get(key).map_err(engine_err)
    }

    /// Reads a user key's value from memory only: the shard's value cache, else RocksDB's
    /// memtable and block cache (a value found there is cached). `Ok(None)` in the outer
    /// option means "not in memory, read on the blocking pool".
    pub fn get_cached(&self, key: &Bytes) -> Result<Option<Option<Bytes>>> {
        if let Some(v) = self.values.borrow_mut().get(key) {
            return Ok(Some(Some(v)));
        }
        let mut ro = ReadOptions::default();
        ro.set_read_tier(rocksdb::ReadTier::BlockCache);
        match self.db()?.get_pinned_opt(keys::data_key(key), &ro) {
            Ok(Some(v)) => {
                let v = Bytes::copy_from_slice(&v);
                self.values.borrow_mut().insert(key.clone(), v.clone());
                Ok(Some(Some(v)))
            }
            Ok(None) => Ok(Some(None)),
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Err(e) => Err(engine_err(e)),
        }
    }

    /// An applied batch is in RocksDB: the value cache takes the changes it made, in order
    /// (`Some(value)`: put, `None`: delete).
    pub fn cache_applied<'a>(&self, changes: impl Iterator<Item = (&'a Bytes, Option<&'a Bytes>)>) {
        let mut values = self.values.borrow_mut();
        for (k, v) in changes {
            match v {
                Some(v) => values.insert(k.clone(), v.clone()),
                None => values.remove(k),
            }
        }
    }

    /// Drops every cached value: data changed under the cache some other way than an applied
    /// batch of puts and deletes (a range delete, a snapshot, a region moving).
    pub fn clear_value_cache(&self) {
        self.values.borrow_mut().clear();
    }

    /// The value cache's counters, entries and bytes.
    pub fn value_cache_stats(&self) -> (CacheStats, usize, usize) {
        let v = self.values.borrow();
        (v.stats(), v.len(), v.bytes())
    }

    /// Reads a key on the blocking pool.
    pub async fn get_blocking(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let db = self.db_arc()?;
        glommio::executor().spawn_blocking(move || db.get(key).map_err(engine_err)).await
    }

    /// Reads and decodes a message.
    pub fn get_msg<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>> {
        match self.get(key)? {
            Some(v) => M::decode(&*v).map(Some).map_err(|e| StoreError::Engine(format!("corrupt value: {e}"))),
            None => Ok(None),
        }
    }

    /// Writes a batch of applied state: WAL off, `no_slowdown`, on the executor (memtable
    /// inserts are microseconds). When RocksDB would make the write wait — a write stall — it
    /// is refused and handed back unwritten ([`WriteError::Stalled`]): the caller finishes it
    /// off the executor with [`KvEngine::write_stalled`].
    pub fn write(&self, batch: WriteBatch) -> std::result::Result<(), WriteError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        wo.set_no_slowdown(true);
        let db = self.db().map_err(WriteError::Failed)?;
        if core_shard::fault_point!("engine::write::stall") {
            return Err(WriteError::Stalled(batch));
        }
        match db.write_opt_ref(&batch, &wo) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Err(WriteError::Stalled(batch)),
            Err(e) => Err(WriteError::Failed(engine_err(e))),
        }
    }

    /// Writes a batch of applied state that [`KvEngine::write`] refused during a write stall,
    /// on the blocking pool: it waits out the stall there, not on the executor.
    pub async fn write_stalled(&self, batch: WriteBatch) -> Result<()> {
        let db = self.db_arc()?;
        let written = glommio::executor()
            .spawn_blocking(move || {
                let mut wo = WriteOptions::default();
                wo.disable_wal(true);
                db.write_opt(batch, &wo).map_err(engine_err)
            })
            .await;
        // What the batch wrote is not in the value cache.
        self.clear_value_cache();
        written
    }

    /// [`KvEngine::write`] for writes nothing waits on (cleaning up a region that left the
    /// shard): a stalled one is finished on the blocking pool in the background.
    pub fn write_or_defer(&self, batch: WriteBatch, what: &'static str) -> Result<()> {
        self.clear_value_cache();
        match self.write(batch) {
            Ok(()) => Ok(()),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Stalled(batch)) => {
                let engine = self.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = engine.write_stalled(batch).await {
                        tracing::warn!(what, "write after a stall failed: {e}");
                    }
                })
                .detach();
                Ok(())
            }
        }
    }

    /// Writes a batch durably (WAL + sync) on the blocking pool.
    pub async fn write_durable(&self, batch: WriteBatch) -> Result<()> {
        let db = self.db_arc()?;
        let written = glommio::executor()
            .spawn_blocking(move || {
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                db.write_opt(batch, &wo).map_err(engine_err)
            })
            .await;
        // Durable writes carry data the value cache did not see (a snapshot, a region handed
        // over, a region's data dropped).
        self.clear_value_cache();
        written
    }

    /// Writes a batch durably on the calling thread (start-up only).
    pub fn write_durable_blocking(&self, batch: WriteBatch) -> Result<()> {
        self.clear_value_cache();
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db()?.write_opt(batch, &wo).map_err(engine_err)
    }

    /// Flushes every column family's memtables to SST files atomically, on the blocking pool:
    /// every write made before the call is durable when it returns.
    pub async fn flush(&self) -> Result<()> {
        let db = self.db_arc()?;
        glommio::executor()
            .spawn_blocking(move || {
                let mut cfs = vec![db
                    .cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
                    .ok_or_else(|| StoreError::Engine("default column family missing".into()))?];
                for cf in Cf::ALL {
                    cfs.push(txn_cf(&db, cf)?);
                }
                db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default()).map_err(engine_err)
            })
            .await
    }

    /// Every region's stored metadata (start-up).
    pub fn load_regions(&self) -> Result<Vec<(u64, StoredRegion)>> {
        let mut out: Vec<(u64, StoredRegion)> = Vec::new();
        let mode = IteratorMode::From(keys::REGION_META_PREFIX, Direction::Forward);
        let db = self.db()?;
        for item in db.iterator(mode) {
            let (k, v) = item.map_err(engine_err)?;
            if &*k >= keys::REGION_META_END {
                break;
            }
            let Some((id, is_state)) = keys::decode_region_meta_key(&k) else { continue };
            let corrupt = |e: prost::DecodeError| StoreError::Engine(format!("region {id} metadata corrupt: {e}"));
            if is_state {
                let state = RegionLocalState::decode(&*v).map_err(corrupt)?;
                out.push((id, StoredRegion { state, apply: None }));
            } else if let Some(last) = out.last_mut().filter(|(i, _)| *i == id) {
                last.1.apply = Some(RaftApplyState::decode(&*v).map_err(corrupt)?);
            }
        }
        Ok(out)
    }

    /// Pairs of data keys in `[start, end)`, in order (or reverse), calling `f` with the
    /// user key and value; `f` returns false to stop.
    pub fn scan(&self, start: &[u8], end: &[u8], reverse: bool, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_tier(start, end, reverse, false, f).map(|_| ())
    }

    /// [`KvEngine::scan`] from memory only (memtable and block cache). Returns `Ok(false)`
    /// when data had to be read from disk: the caller reruns the scan on the blocking pool.
    pub fn scan_cached(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool> {
        self.scan_tier(start, end, reverse, true, f)
    }

    fn scan_tier(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        cache_only: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool> {
        let lo = keys::data_key(start);
        let hi = keys::data_end_key(end);
        let mut ro = ReadOptions::default();
        if cache_only {
            ro.set_read_tier(rocksdb::ReadTier::BlockCache);
        }
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi.clone());
        let db = self.db()?;
        let mut it = db.raw_iterator_opt(ro);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek(&lo);
        }
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if !f(keys::origin_key(k), v) {
                return Ok(true);
            }
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        match it.status() {
            Ok(()) => Ok(true),
            Err(e) if cache_only && e.kind() == rocksdb::ErrorKind::Incomplete => Ok(false),
            Err(e) => Err(engine_err(e)),
        }
    }

    /// Deletes everything a region keeps in the shard's RocksDB: its data in every family,
    /// its region state and its apply state. (A caller that keeps a tombstone writes it after
    /// this, in the same batch.) With the database closed only the metadata is deleted; the
    /// batch cannot be written then anyway.
    pub fn clear_region(&self, batch: &mut WriteBatch, region: &Region) {
        self.delete_region_data(batch, &region.start_key, &region.end_key);
        batch.delete(keys::region_state_key(region.id));
        batch.delete(keys::apply_state_key(region.id));
    }

    /// Deletes the data of the user key range `[start, end)` in every family (raw and
    /// transactional).
    pub fn delete_region_data(&self, batch: &mut WriteBatch, start: &[u8], end: &[u8]) {
        delete_data_range(batch, start, end);
        let Ok(db) = self.db() else { return };
        for cf in Cf::ALL {
            if let Some(handle) = db.cf_handle(cf.name()) {
                let (lo, hi) = txn_range(start, end);
                batch.delete_range_cf(handle, lo, hi);
            }
        }
    }

    /// Puts a pair of a region's data as [`OwnedSnapshot::scan_region`] reported it (family
    /// number, key within the family without the data prefix, value): receiving a snapshot
    /// or a region handed over. An unknown family is an error (the sender is newer or the
    /// data damaged).
    pub fn put_region_pair(&self, batch: &mut WriteBatch, family: u32, key: &[u8], value: &[u8]) -> Result<()> {
        if family == RAW_FAMILY {
            batch.put(keys::data_key(key), value);
            return Ok(());
        }
        let db = self.db()?;
        let handle = family_cf(family)
            .and_then(|cf| db.cf_handle(cf.name()))
            .ok_or_else(|| StoreError::Engine(format!("unknown column family number {family}")))?;
        batch.put_cf(handle, keys::data_key(key), value);
        Ok(())
    }

    /// Adds transactional modifications (from [`txn::TxnCommand::process`]) to a batch.
    pub fn put_modifies(&self, batch: &mut WriteBatch, modifies: &[txn::Modify]) -> Result<()> {
        let db = self.db()?;
        for m in modifies {
            let handle = txn_cf(&db, m.cf())?;
            match m {
                txn::Modify::Put { key, value, .. } => batch.put_cf(handle, keys::data_key(key), value),
                txn::Modify::Delete { key, .. } => batch.delete_cf(handle, keys::data_key(key)),
            }
        }
        Ok(())
    }

    /// A key of a transactional family in the live database (key without the data prefix).
    fn get_txn(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let db = self.db()?;
        db.get_cf(txn_cf(&db, cf)?, keys::data_key(key)).map_err(engine_err)
    }

    /// Pairs of a transactional family in the live database with `from <= key < to` (keys
    /// without the data prefix; `to` `None`: no end), at most `limit`.
    fn scan_txn(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lo = keys::data_key(from);
        let hi = to.map_or_else(|| keys::DATA_END.to_vec(), keys::data_key);
        let mut out = Vec::new();
        if limit == 0 || hi <= lo {
            return Ok(out);
        }
        let db = self.db()?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi);
        let mut it = db.raw_iterator_cf_opt(txn_cf(&db, cf)?, ro);
        it.seek(&lo);
        while it.valid() && out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            out.push((keys::origin_key(k).to_vec(), v.to_vec()));
            it.next();
        }
        it.status().map_err(engine_err)?;
        Ok(out)
    }

    /// A consistent view of the database as of now, usable from another thread.
    pub fn snapshot(&self) -> Result<OwnedSnapshot> {
        let db = self.db_arc()?;
        let snap = db.snapshot();
        // SAFETY: the snapshot borrows the DB, which `_db` keeps alive for as long as the
        // snapshot (fields drop in declaration order: `snap` first).
        let snap: rocksdb::Snapshot<'static> = unsafe { std::mem::transmute(snap) };
        Ok(OwnedSnapshot { snap, _db: db.clone() })
    }
}

/// The family number of raw data in [`OwnedSnapshot::scan_region`] and
/// [`KvEngine::put_region_pair`]; the transactional families follow in [`Cf::ALL`] order.
pub const RAW_FAMILY: u32 = 0;

/// The number of a transactional family.
pub fn family_number(cf: Cf) -> u32 {
    Cf::ALL.iter().position(|&c| c == cf).map_or(RAW_FAMILY, |i| i as u32 + 1)
}

/// The transactional family of a family number (`None`: raw, or unknown).
pub fn family_cf(family: u32) -> Option<Cf> {
    let i = usize::try_from(family.checked_sub(1)?).ok()?;
    Cf::ALL.get(i).copied()
}

fn txn_cf(db: &DB, cf: Cf) -> Result<&ColumnFamily> {
    db.cf_handle(cf.name()).ok_or_else(|| StoreError::Engine(format!("column family {} missing", cf.name())))
}

/// The keys of a transactional family holding the user key range `[start, end)` (empty end:
/// to the end), with the data prefix: encoding keeps the order of user keys.
pub fn txn_range(start: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let lo = keys::data_key(&codec::encode_key(start));
    let hi = if end.is_empty() { keys::DATA_END.to_vec() } else { keys::data_key(&codec::encode_key(end)) };
    (lo, hi)
}

/// A RocksDB snapshot that owns a handle to its database.
pub struct OwnedSnapshot {
    snap: rocksdb::Snapshot<'static>,
    _db: Arc<DB>,
}

// SAFETY: a RocksDB snapshot is an immutable handle that may be used from any thread; the
// database it belongs to is `Sync` and kept alive by the `Arc`.
unsafe impl Send for OwnedSnapshot {}

impl OwnedSnapshot {
    /// Pairs of data keys in `[start, end)`, in order, calling `f` with the user key and
    /// value until it returns false.
    pub fn scan(&self, start: &[u8], end: &[u8], f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_dir(start, end, false, f)
    }

    /// Every pair of a region's data, raw and transactional: calls `f` with the family
    /// number ([`RAW_FAMILY`] or [`family_number`]), the key within the family without the
    /// data prefix, and the value, until it returns false.
    pub fn scan_region(&self, start: &[u8], end: &[u8], mut f: impl FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()> {
        let mut go = true;
        self.scan(start, end, |k, v| {
            go = f(RAW_FAMILY, k, v);
            go
        })?;
        for cf in Cf::ALL {
            if !go {
                break;
            }
            let (lo, hi) = txn_range(start, end);
            let family = family_number(cf);
            self.scan_cf(cf, &lo, &hi, |k, v| {
                go = f(family, keys::origin_key(k), v);
                go
            })?;
        }
        Ok(())
    }

    /// Pairs of a transactional family with `lo <= key < hi` (keys with the data prefix).
    fn scan_cf(&self, cf: Cf, lo: &[u8], hi: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let handle = txn_cf(&self._db, cf)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lo.to_vec());
        ro.set_iterate_upper_bound(hi.to_vec());
        let mut it = self.snap.raw_iterator_cf_opt(handle, ro);
        it.seek(lo);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if !f(k, v) {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(engine_err)
    }

    /// [`OwnedSnapshot::scan`] in either direction.
    pub fn scan_dir(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let lo = keys::data_key(start);
        let hi = keys::data_end_key(end);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi);
        let mut it = self.snap.raw_iterator_opt(ro);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek(&lo);
        }
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if !f(keys::origin_key(k), v) {
                return Ok(());
            }
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().map_err(engine_err)
    }
}

/// Puts a message into a batch.
pub fn put_msg(batch: &mut WriteBatch, key: &[u8], m: &impl Message) {
    batch.put(key, m.encode_to_vec());
}

/// Deletes every raw data key of `[start, end)` (transactional data stays: see
/// [`KvEngine::delete_region_data`]).
pub fn delete_data_range(batch: &mut WriteBatch, start: &[u8], end: &[u8]) {
    batch.delete_range(keys::data_key(start), keys::data_end_key(end));
}

/// Transactional changes of the apply batch not yet written, by family and key (`None`:
/// deleted).
pub type TxnStaged = std::collections::BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>;

/// The transactional families of the live database as the apply batch has changed them so
/// far: what a transactional command processed at apply reads (the shard applies one entry
/// at a time, so nothing else changes the families underneath).
pub struct ApplyView<'a> {
    /// The shard's database.
    pub engine: &'a KvEngine,
    /// The batch's changes so far.
    pub staged: &'a TxnStaged,
}

fn txn_err(e: StoreError) -> txn::TxnError {
    txn::TxnError::Engine(e.to_string())
}

impl txn::Snapshot for ApplyView<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> txn::Result<Option<Vec<u8>>> {
        match self.staged.get(&(cf, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.engine.get_txn(cf, key).map_err(txn_err),
        }
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, limit: usize) -> txn::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use std::ops::Bound;
        if to.is_some_and(|t| t <= from) {
            return Ok(Vec::new());
        }
        let staged: Vec<_> = self
            .staged
            .range((Bound::Included((cf, from.to_vec())), Bound::Unbounded))
            .take_while(|((c, k), _)| *c == cf && to.is_none_or(|t| k.as_slice() < t))
            .collect();
        // Each staged delete hides at most one stored pair: read that many more.
        let deletes = staged.iter().filter(|(_, v)| v.is_none()).count();
        let stored = self.engine.scan_txn(cf, from, to, limit.saturating_add(deletes)).map_err(txn_err)?;
        let mut merged: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = stored.into_iter().collect();
        for ((_, k), v) in staged {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl txn::Snapshot for OwnedSnapshot {
    fn get(&self, cf: Cf, key: &[u8]) -> txn::Result<Option<Vec<u8>>> {
        let handle = txn_cf(&self._db, cf).map_err(|e| txn::TxnError::Engine(e.to_string()))?;
        self.snap.get_cf(handle, keys::data_key(key)).map_err(|e| txn::TxnError::Engine(e.to_string()))
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, limit: usize) -> txn::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lo = keys::data_key(from);
        let hi = to.map_or_else(|| keys::DATA_END.to_vec(), keys::data_key);
        let mut out = Vec::new();
        if limit == 0 || hi <= lo {
            return Ok(out);
        }
        self.scan_cf(cf, &lo, &hi, |k, v| {
            out.push((keys::origin_key(k).to_vec(), v.to_vec()));
            out.len() < limit
        })
        .map_err(|e| txn::TxnError::Engine(e.to_string()))?;
        Ok(out)
    }
}
