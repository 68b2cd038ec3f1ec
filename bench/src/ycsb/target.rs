//! What a workload runs against: the [`Target`] trait and its Percore implementation (the
//! Redis one is in [`super::redis`]).
//!
//! A target lives on one client executor (one per thread); every operation returns a boxed
//! local future, so one trait object serves Percore and Redis alike. A record is one value:
//! an update or a read-modify-write's write replaces the whole record (the usual adaptation
//! of YCSB's per-field update to a plain key-value store).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use net::kv::{KvClient, KvConfig};
use pd::{PdClient, PdClientConfig};

/// The future of one operation; the error is the message to count and show.
pub type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + 'a>>;

/// A key-value service the workload drives.
pub trait Target {
    /// The record under `key`, `None` if there is none.
    fn read(&self, key: Bytes) -> OpFuture<'_, Option<Bytes>>;
    /// Writes a new record.
    fn insert(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()>;
    /// Overwrites a record.
    fn update(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()>;
    /// Reads up to `len` records from `start` on, in key order; returns how many it read.
    fn scan(&self, start: Bytes, len: usize) -> OpFuture<'_, usize>;
    /// Closes connections (after the last operation).
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + '_>>;
}

/// Which service to connect to; cloned into every client thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A Percore cluster, through its PD.
    Percore {
        /// PD's address.
        pd: String,
    },
    /// A Redis-protocol server.
    Redis {
        /// `HOST:PORT`.
        addr: String,
        /// Keep the sorted-set index that scans need (workloads with scans).
        scan_index: bool,
    },
}

impl TargetSpec {
    /// Connects from the current executor.
    pub async fn connect(&self) -> Result<Rc<dyn Target>, String> {
        match self {
            TargetSpec::Percore { pd } => {
                let client = PdClient::new(PdClientConfig::new(vec![pd.clone()]));
                // Fail fast (and warm the route cache) if PD or the cluster is not there.
                client.get_region(b"").await.map_err(|e| format!("PD at {pd}: {e}"))?;
                let kv = KvClient::new(Rc::new(client), KvConfig::default());
                Ok(Rc::new(PercoreTarget { kv }))
            }
            TargetSpec::Redis { addr, scan_index } => {
                let t = super::redis::RedisTarget::connect(addr, *scan_index).await?;
                Ok(Rc::new(t))
            }
        }
    }
}

/// Percore through the routing client (`net::kv::KvClient`: region cache, leader routing,
/// retries with backoff under a 20 s deadline per operation).
pub struct PercoreTarget {
    kv: KvClient,
}

impl Target for PercoreTarget {
    fn read(&self, key: Bytes) -> OpFuture<'_, Option<Bytes>> {
        Box::pin(async move { self.kv.get(key).await.map_err(|e| e.to_string()) })
    }

    fn insert(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()> {
        Box::pin(async move { self.kv.put(key, value).await.map_err(|e| e.to_string()) })
    }

    fn update(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()> {
        self.insert(key, value)
    }

    fn scan(&self, start: Bytes, len: usize) -> OpFuture<'_, usize> {
        Box::pin(async move {
            let limit = u32::try_from(len).unwrap_or(u32::MAX);
            let pairs = self.kv.scan(start, Bytes::new(), limit, false, false).await.map_err(|e| e.to_string())?;
            Ok(pairs.len())
        })
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async {})
    }
}
