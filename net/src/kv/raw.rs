//! Single-key operations: get, put, delete, compare-and-swap.

use bytes::Bytes;

use super::client::KvClient;
use super::error::Result;
use super::locate::Locate;
use crate::proto::kvrpcpb::{RawCasRequest, RawDeleteRequest, RawGetRequest, RawPutRequest};

/// The result of [`KvClient::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasResult {
    /// Whether the new value was written (or the key deleted).
    pub succeed: bool,
    /// The value before the operation; `None` if the key did not exist.
    pub previous: Option<Bytes>,
}

impl KvClient {
    /// The value of `key`, `None` if absent.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>> {
        let key = key.into();
        let req = RawGetRequest { context: None, key: key.clone() };
        let (_, resp) = self.run(&mut self.backoffer(), Locate::Key(&key), |_| req.clone()).await?;
        Ok((!resp.not_found).then_some(resp.value))
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<()> {
        let key = key.into();
        let req = RawPutRequest { context: None, key: key.clone(), value: value.into() };
        self.run(&mut self.backoffer(), Locate::Key(&key), |_| req.clone()).await.map(|_| ())
    }

    /// Deletes `key` (absent keys are fine).
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<()> {
        let key = key.into();
        let req = RawDeleteRequest { context: None, key: key.clone() };
        self.run(&mut self.backoffer(), Locate::Key(&key), |_| req.clone()).await.map(|_| ())
    }

    /// Atomically: if `key`'s value is `expected` (`None` = the key must not exist), sets it
    /// to `new` (`None` = deletes it). Returns whether it did and the value before.
    ///
    /// A retry after a lost response can see its own write: the caller then gets
    /// `succeed: false` with `previous == new`.
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new: Option<Bytes>,
    ) -> Result<CasResult> {
        let key = key.into();
        let req = RawCasRequest {
            context: None,
            key: key.clone(),
            previous_not_exist: expected.is_none(),
            previous_value: expected.unwrap_or_default(),
            delete: new.is_none(),
            value: new.unwrap_or_default(),
        };
        let (_, resp) = self.run(&mut self.backoffer(), Locate::Key(&key), |_| req.clone()).await?;
        let previous = (!resp.previous_not_exist).then_some(resp.previous_value);
        Ok(CasResult { succeed: resp.succeed, previous })
    }
}
