//! The store's identity and cluster bootstrap.
//!
//! `store.ident` (written once, atomically) holds the cluster id, the store id and the shard
//! count. A new store asks PD for an id; if the cluster is not bootstrapped yet it also
//! creates the first region (covering every key, one peer: itself) in shard 0's RocksDB,
//! records the region as a pending bootstrap in `store.ident`, and asks PD to bootstrap with
//! it. A crash anywhere in between is finished at the next start: the pending region is
//! either confirmed by PD or, if another store won the bootstrap, deleted.

use std::path::{Path, PathBuf};

use net::proto::metapb::{Peer, Region, RegionEpoch, Store};
use net::proto::pdpb::ErrorType;
use net::proto::raft_serverpb::{PeerState, RegionLocalState};
use pd::PdError;
use rocksdb::WriteBatch;

use crate::ctx::ShardCtx;
use crate::engine::put_msg;
use crate::error::{Result, StoreError};
use crate::keys;
use crate::storage::PeerStorage;

/// What `store.ident` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The cluster.
    pub cluster_id: u64,
    /// This store.
    pub store_id: u64,
    /// Shards, fixed at creation.
    pub shards: usize,
    /// A bootstrap region not yet confirmed by PD.
    pub pending_region: Option<u64>,
}

impl Ident {
    fn path(dir: &Path) -> PathBuf {
        dir.join("store.ident")
    }

    /// Reads the identity, if the store was created.
    pub fn load(dir: &Path) -> Result<Option<Ident>> {
        let text = match std::fs::read_to_string(Self::path(dir)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io(format!("read store.ident: {e}"))),
        };
        let mut id = Ident { cluster_id: 0, store_id: 0, shards: 0, pending_region: None };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else { continue };
            let num = |v: &str| {
                v.trim().parse::<u64>().map_err(|_| StoreError::Identity(format!("bad store.ident line {line:?}")))
            };
            match k.trim() {
                "cluster_id" => id.cluster_id = num(v)?,
                "store_id" => id.store_id = num(v)?,
                "shards" => id.shards = num(v)? as usize,
                "pending_bootstrap_region" => id.pending_region = Some(num(v)?),
                _ => {}
            }
        }
        if id.store_id == 0 || id.shards == 0 {
            return Err(StoreError::Identity("store.ident lacks store_id or shards".into()));
        }
        Ok(Some(id))
    }

    /// Writes the identity atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        use std::io::Write;
        let mut text = format!("cluster_id={}\nstore_id={}\nshards={}\n", self.cluster_id, self.store_id, self.shards);
        if let Some(r) = self.pending_region {
            text.push_str(&format!("pending_bootstrap_region={r}\n"));
        }
        let io = |e: std::io::Error| StoreError::Io(format!("write store.ident: {e}"));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join("store.ident.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, Self::path(dir)).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

/// Makes sure this store has an identity (and the cluster is bootstrapped); returns it.
/// Runs on shard 0, which holds the first region.
pub async fn ensure_store(ctx: &ShardCtx, dir: &Path, shards: usize, address: &str) -> Result<Ident> {
    let pd = &ctx.pd;
    let mut ident = match Ident::load(dir)? {
        Some(id) => {
            if id.shards != shards {
                return Err(StoreError::Identity(format!(
                    "this store was created with {} shards; start it with --shards {} (the CPU list may change)",
                    id.shards, id.shards
                )));
            }
            pd.cluster_info().await?;
            if pd.cluster_id() != id.cluster_id {
                return Err(StoreError::Identity(format!(
                    "the store belongs to cluster {}, but PD serves cluster {}",
                    id.cluster_id,
                    pd.cluster_id()
                )));
            }
            id
        }
        None => {
            let bootstrapped = pd.is_bootstrapped().await?;
            let store_id = pd.alloc_id().await?;
            let mut id = Ident { cluster_id: pd.cluster_id(), store_id, shards, pending_region: None };
            if !bootstrapped {
                let region = first_region(ctx, store_id).await?;
                id.pending_region = Some(region.id);
            }
            id.save(dir)?;
            id
        }
    };
    if let Some(region_id) = ident.pending_region {
        finish_bootstrap(ctx, &ident, region_id, address).await?;
        ident.pending_region = None;
        ident.save(dir)?;
    }
    Ok(ident)
}

/// Writes the first region (every key, one peer) durably into shard 0.
async fn first_region(ctx: &ShardCtx, store_id: u64) -> Result<Region> {
    let region_id = ctx.pd.alloc_id().await?;
    let peer_id = ctx.pd.alloc_id().await?;
    let region = Region {
        id: region_id,
        start_key: Default::default(),
        end_key: Default::default(),
        region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
        peers: vec![Peer { id: peer_id, store_id, role: 0 }],
    };
    let mut wb = WriteBatch::default();
    let state = RegionLocalState { state: PeerState::Normal as i32, region: Some(region.clone()), handover_seq: 0 };
    put_msg(&mut wb, &keys::region_state_key(region_id), &state);
    put_msg(&mut wb, &keys::apply_state_key(region_id), &PeerStorage::initial_apply_state());
    ctx.engine.write_durable(wb).await?;
    Ok(region)
}

async fn finish_bootstrap(ctx: &ShardCtx, ident: &Ident, region_id: u64, address: &str) -> Result<()> {
    let region = ctx
        .engine
        .get_msg::<RegionLocalState>(&keys::region_state_key(region_id))?
        .and_then(|s| s.region)
        .ok_or_else(|| StoreError::Identity(format!("pending bootstrap region {region_id} is missing")))?;
    let store = Store { id: ident.store_id, address: address.to_string(), ..Default::default() };
    match ctx.pd.bootstrap(store, region.clone()).await {
        Ok(()) => {
            tracing::info!(store_id = ident.store_id, region_id, "bootstrapped the cluster");
            Ok(())
        }
        Err(PdError::Server { kind: ErrorType::AlreadyBootstrapped, .. }) => {
            // Either our earlier attempt went through, or another store won.
            match ctx.pd.get_region_by_id(region_id).await {
                Ok(_) => Ok(()),
                Err(_) => {
                    tracing::info!(region_id, "another store bootstrapped the cluster; dropping our first region");
                    let mut wb = WriteBatch::default();
                    ctx.engine.delete_region_data(&mut wb, &region.start_key, &region.end_key);
                    wb.delete(keys::region_state_key(region_id));
                    wb.delete(keys::apply_state_key(region_id));
                    ctx.engine.write_durable(wb).await
                }
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ident::load(dir.path()).unwrap(), None);
        let id = Ident { cluster_id: 9, store_id: 4, shards: 2, pending_region: Some(7) };
        id.save(dir.path()).unwrap();
        assert_eq!(Ident::load(dir.path()).unwrap(), Some(id));
        std::fs::write(dir.path().join("store.ident"), "store_id=x\n").unwrap();
        assert!(Ident::load(dir.path()).is_err());
        std::fs::write(dir.path().join("store.ident"), "cluster_id=1\n").unwrap();
        assert!(Ident::load(dir.path()).is_err());
    }
}
