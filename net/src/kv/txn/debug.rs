//! Debugging reads of the transactional key space: the MVCC dump of a key.

use bytes::Bytes;

use super::{Result, TxnClient, TxnError};
use crate::kv::error::KvError;
use crate::kv::locate::Locate;
use crate::proto::kvrpcpb::{KvMvccRequest, KvMvccResponse};

impl TxnClient {
    /// Everything stored for `key`, read on its region's leader: the lock, the write records
    /// newest first, and the long values (`percore-ctl mvcc`).
    pub async fn mvcc(&self, key: impl Into<Bytes>) -> Result<KvMvccResponse> {
        let key = key.into();
        let req = KvMvccRequest { context: None, key: key.clone() };
        let mut bo = self.kv.backoffer();
        let (_, r) = self.kv.run(&mut bo, Locate::Key(&key), |_| req.clone()).await?;
        if !r.error.is_empty() {
            return Err(TxnError::Kv(KvError::Server { region_id: 0, message: r.error }));
        }
        Ok(r)
    }
}
