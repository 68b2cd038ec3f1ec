//! PD's persistent state: a RocksDB in PD's data directory.
//!
//! | key | value |
//! |---|---|
//! | `cluster_id` | u64 |
//! | `bootstrapped` | `1` |
//! | `alloc_id` | u64: no id at or above it was handed out |
//! | `tso` | i64 ms: no timestamp with this physical part or above was handed out |
//! | `store/<id:020>` | `metapb::Store` |
//! | `region/<id:020>` | `metapb::Region` |
//!
//! Writes of the cluster identity, stores, the ID and TSO high-water marks are synced
//! (fsync'd WAL) before PD acts on them. Region metadata is written through the WAL without a
//! sync: a crash of the PD process (kill -9) keeps it (the OS has it), and after a machine
//! crash the stores' heartbeats restore it. RocksDB calls run on the executor's blocking pool,
//! never on the executor itself.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use rocksdb::{IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::error::{PdError, Result};
use net::proto::metapb;

/// Key of the cluster id.
pub const CLUSTER_ID: &[u8] = b"cluster_id";
/// Key of the bootstrapped flag.
pub const BOOTSTRAPPED: &[u8] = b"bootstrapped";
/// Key of the ID high-water mark.
pub const ALLOC_ID: &[u8] = b"alloc_id";
/// Key of the TSO high-water mark.
pub const TSO: &[u8] = b"tso";

/// Key of a store.
pub fn store_key(id: u64) -> Vec<u8> {
    format!("store/{id:020}").into_bytes()
}

/// Key of a region.
pub fn region_key(id: u64) -> Vec<u8> {
    format!("region/{id:020}").into_bytes()
}

/// One write: puts and deletes applied atomically.
#[derive(Default, Debug, Clone)]
pub struct Write {
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    deletes: Vec<Vec<u8>>,
    sync: bool,
}

impl Write {
    /// A write that is fsync'd before it returns.
    pub fn synced() -> Self {
        Write { sync: true, ..Default::default() }
    }

    /// A write through the WAL without fsync.
    pub fn unsynced() -> Self {
        Write::default()
    }

    /// Adds a put.
    pub fn put(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.puts.push((key.into(), value.into()));
        self
    }

    /// Adds a put of a u64.
    pub fn put_u64(self, key: &[u8], v: u64) -> Self {
        self.put(key.to_vec(), v.to_be_bytes().to_vec())
    }

    /// Adds a put of a message.
    pub fn put_msg(self, key: Vec<u8>, m: &impl Message) -> Self {
        self.put(key, m.encode_to_vec())
    }

    /// Adds a delete.
    pub fn delete(mut self, key: Vec<u8>) -> Self {
        self.deletes.push(key);
        self
    }
}

/// What PD loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The cluster id, if one was created.
    pub cluster_id: Option<u64>,
    /// Whether the cluster is bootstrapped.
    pub bootstrapped: bool,
    /// ID high-water mark.
    pub alloc_id: u64,
    /// TSO high-water mark (ms).
    pub tso: u64,
    /// Stores.
    pub stores: Vec<metapb::Store>,
    /// Regions.
    pub regions: Vec<metapb::Region>,
}

/// The storage handle. Cloneable and `Send`, for the blocking pool.
#[derive(Clone)]
pub struct Storage {
    db: Arc<DB>,
}

impl Storage {
    /// Opens (creating) the database in `dir`. Blocking: call at start-up.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        let db = DB::open(&opts, dir).map_err(|e| PdError::Storage(format!("open {}: {e}", dir.display())))?;
        Ok(Storage { db: Arc::new(db) })
    }

    /// Reads everything PD keeps. Blocking: call at start-up.
    pub fn load(&self) -> Result<Loaded> {
        let mut out = Loaded::default();
        let get_u64 = |k: &[u8]| -> Result<Option<u64>> {
            match self.db.get(k).map_err(storage_err)? {
                Some(v) if v.len() == 8 => Ok(Some(u64::from_be_bytes(v[..8].try_into().expect("8 bytes")))),
                Some(_) => Err(PdError::Storage(format!("bad value under {}", String::from_utf8_lossy(k)))),
                None => Ok(None),
            }
        };
        out.cluster_id = get_u64(CLUSTER_ID)?;
        out.bootstrapped = self.db.get(BOOTSTRAPPED).map_err(storage_err)?.is_some();
        out.alloc_id = get_u64(ALLOC_ID)?.unwrap_or(0);
        out.tso = get_u64(TSO)?.unwrap_or(0);
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, v) = item.map_err(storage_err)?;
            if k.starts_with(b"store/") {
                out.stores.push(metapb::Store::decode(&*v).map_err(|e| PdError::Storage(format!("bad store: {e}")))?);
            } else if k.starts_with(b"region/") {
                out.regions
                    .push(metapb::Region::decode(&*v).map_err(|e| PdError::Storage(format!("bad region: {e}")))?);
            }
        }
        Ok(out)
    }

    /// Reads a key on the calling thread (start-up only).
    pub fn get_blocking(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(storage_err)
    }

    /// Applies a write on the blocking pool and waits for it.
    pub async fn write(&self, w: Write) -> Result<()> {
        let db = self.db.clone();
        glommio::executor().spawn_blocking(move || apply(&db, w)).await
    }

    /// Applies a write on the calling thread (start-up only).
    pub fn write_blocking(&self, w: Write) -> Result<()> {
        apply(&self.db, w)
    }
}

fn apply(db: &DB, w: Write) -> Result<()> {
    let mut batch = WriteBatch::default();
    for (k, v) in &w.puts {
        batch.put(k, v);
    }
    for k in &w.deletes {
        batch.delete(k);
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(w.sync);
    db.write_opt(batch, &opts).map_err(storage_err)
}

fn storage_err(e: rocksdb::Error) -> PdError {
    PdError::Storage(e.to_string())
}
