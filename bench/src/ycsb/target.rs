//! What a workload runs against: the [`Target`] trait. Its implementations are
//! [`super::percore`] and [`super::redis`]; [`super::spec`] picks one and connects.
//!
//! A target lives on one client executor (one per thread); every operation returns a boxed
//! local future, so one trait object serves Percore and Redis alike. A record is one value:
//! an update or a read-modify-write's write replaces the whole record (the usual adaptation
//! of YCSB's per-field update to a plain key-value store).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

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
