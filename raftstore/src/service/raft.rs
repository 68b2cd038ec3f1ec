//! Raft traffic from other stores: message batches, and snapshots in chunks.

use bytes::Bytes;
use net::proto::raft_serverpb::{Done, RaftMessageBatch, SnapshotChunk};
use net::proto::rpcpb::StatusCode;
use net::server::{status, HandlerResult};
use prost::Message;

use super::{encoded, StoreService};
use crate::router;

impl StoreService {
    /// A batch of raft messages: each goes to the shard owning its region.
    pub(super) fn on_raft_batch(&self, payload: Bytes) -> HandlerResult {
        let batch = RaftMessageBatch::decode(payload)
            .map_err(|e| status(StatusCode::BadRequest, format!("bad raft batch: {e}")))?;
        for m in batch.msgs {
            router::route_raft(&self.ctx, m);
        }
        encoded(Done {})
    }

    /// A chunk of a snapshot; the last one delivers the snapshot's message.
    pub(super) fn on_snapshot_chunk(&self, payload: Bytes) -> HandlerResult {
        let chunk = SnapshotChunk::decode(payload)
            .map_err(|e| status(StatusCode::BadRequest, format!("bad snapshot chunk: {e}")))?;
        match self.snapshots.add(chunk) {
            Ok(Some(m)) => router::route_raft(&self.ctx, m),
            Ok(None) => {}
            Err(e) => return Err(status(StatusCode::BadRequest, e)),
        }
        encoded(Done {})
    }
}
