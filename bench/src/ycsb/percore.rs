//! The workload's Percore target: the routing client (`net::kv::KvClient`: region cache,
//! leader routing, retries with backoff under a 20 s deadline per operation). A record is one
//! value: an update or a read-modify-write's write replaces the whole record.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use net::kv::KvClient;

use super::target::{OpFuture, Target};

/// Percore through the routing client (`net::kv::KvClient`: region cache, leader routing,
/// retries with backoff under a 20 s deadline per operation).
pub struct PercoreTarget {
    kv: KvClient,
}

impl PercoreTarget {
    /// A target over `kv`.
    pub fn new(kv: KvClient) -> Self {
        PercoreTarget { kv }
    }
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
