//! Start-up agreement between the shards of a store: which shard hosts which region.
//!
//! Every shard loads the regions its RocksDB holds and reports them (with their handover
//! sequence) to shard 0, which makes sure the store has an identity (bootstrapping the cluster
//! if needed), resolves regions found on two shards (an interrupted handover: the higher
//! `handover_seq` wins), and sends every shard the directory and what to drop. Then each shard
//! starts its peers, and shard 0 registers the store's shard addresses with PD.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use core_shard::notify::Notify;
use net::proto::metapb::Store;
use net::proto::raft_serverpb::PeerState;
use rocksdb::WriteBatch;

use crate::ctx::ShardCtx;
use crate::engine::StoredRegion;
use crate::error::Result;
use crate::msg::ShardMsg;
use crate::peer::Peer;

/// Start-up messages a shard waits for.
#[derive(Default)]
pub struct StartupSink {
    msgs: RefCell<Vec<ShardMsg>>,
    notify: Notify,
}

impl StartupSink {
    /// Delivers a start-up message.
    pub fn deliver(&self, m: ShardMsg) {
        self.msgs.borrow_mut().push(m);
        self.notify.notify_all();
    }

    async fn take(&self, want: impl Fn(&ShardMsg) -> bool) -> ShardMsg {
        loop {
            let n = self.notify.notified();
            {
                let mut v = self.msgs.borrow_mut();
                if let Some(i) = v.iter().position(&want) {
                    return v.remove(i);
                }
            }
            n.await;
        }
    }
}

/// Agrees with the other shards on the store's regions and starts this shard's peers;
/// `store_id` is shard 0's (the others learn it from the plan). Returns the store id and the
/// peers.
pub async fn agree(
    ctx: &ShardCtx,
    startup: &StartupSink,
    store_id: Option<u64>,
    addr: &str,
) -> Result<(u64, HashMap<u64, Peer>)> {
    let stored = ctx.engine.load_regions()?;
    let summary: Vec<(u64, u64)> = stored.iter().map(|(id, s)| (*id, s.state.handover_seq)).collect();
    let loaded = ShardMsg::Loaded { shard: ctx.shard_id, regions: summary };
    match store_id {
        Some(id) => {
            startup.deliver(loaded);
            coordinate_startup(ctx, startup, id, addr).await?;
        }
        None => {
            publish_addr(ctx, addr);
            let _ = ctx.outbox.send(0, loaded).await;
        }
    }
    let plan = startup.take(|m| matches!(m, ShardMsg::StartupPlan { .. })).await;
    let ShardMsg::StartupPlan { store_id, directory, drop } = plan else { unreachable!("filtered above") };
    ctx.store_id.set(store_id);
    ctx.transport.set_store_id(store_id);
    ctx.shared.store_id.store(store_id, Ordering::SeqCst);
    for (r, s) in directory {
        ctx.directory.set_shard(r, Some(s));
    }
    Ok((store_id, start_peers(ctx, stored, &drop)?))
}

/// Publishes a shard's client address for shard 0 to register with PD.
fn publish_addr(ctx: &ShardCtx, addr: &str) {
    if let Ok(mut a) = ctx.shared.shard_addrs.write() {
        a[ctx.shard_id] = addr.to_string();
    }
}

/// Shard 0: collects what every shard loaded and sends the plan.
async fn coordinate_startup(ctx: &ShardCtx, startup: &StartupSink, store_id: u64, addr: &str) -> Result<()> {
    publish_addr(ctx, addr);
    let mut best: HashMap<u64, (usize, u64)> = HashMap::new();
    let mut all: Vec<(u64, usize, u64)> = Vec::new();
    for _ in 0..ctx.shards {
        let ShardMsg::Loaded { shard, regions } = startup.take(|m| matches!(m, ShardMsg::Loaded { .. })).await else {
            unreachable!("filtered above")
        };
        for (r, seq) in regions {
            all.push((r, shard, seq));
            let e = best.entry(r).or_insert((shard, seq));
            if seq > e.1 {
                *e = (shard, seq);
            }
        }
    }
    let directory: Vec<(u64, usize)> = best.iter().map(|(r, (s, _))| (*r, *s)).collect();
    for to in 0..ctx.shards {
        let drop: Vec<u64> = all.iter().filter(|(r, s, _)| *s == to && best[r].0 != to).map(|(r, _, _)| *r).collect();
        if !drop.is_empty() {
            tracing::warn!(shard = to, regions = ?drop, "dropping stale copies of regions from an interrupted handover");
        }
        let plan = ShardMsg::StartupPlan { store_id, directory: directory.clone(), drop };
        if to == 0 {
            startup.deliver(plan);
        } else {
            let _ = ctx.outbox.send(to, plan).await;
        }
    }
    Ok(())
}

/// Creates the peers of the shard's live regions; drops stale copies.
fn start_peers(ctx: &ShardCtx, stored: Vec<(u64, StoredRegion)>, drop: &[u64]) -> Result<HashMap<u64, Peer>> {
    let mut peers = HashMap::new();
    let stored_here: std::collections::HashSet<u64> = stored.iter().map(|(r, _)| *r).collect();
    for (region_id, s) in stored {
        let region = s.state.region.clone().unwrap_or_default();
        if drop.contains(&region_id) || s.state.state == PeerState::Applying as i32 {
            let mut wb = WriteBatch::default();
            ctx.engine.clear_region(&mut wb, &region);
            ctx.engine.write_durable_blocking(wb)?;
            if let Ok(d) = ctx.log.remove(region_id) {
                drop_durable(d);
            }
            continue;
        }
        if s.state.state != PeerState::Normal as i32 {
            continue; // tombstone: stays in the directory only
        }
        let Some(me) = region.peers.iter().find(|p| p.store_id == ctx.store_id.get()).cloned() else {
            tracing::warn!(region_id, "stored region has no peer on this store; ignored");
            continue;
        };
        let apply = s.apply.clone().unwrap_or_else(crate::storage::PeerStorage::initial_apply_state);
        // A crash between a snapshot's data and its log reset leaves log entries at or below
        // the snapshot's index: drop them, or the next append would leave a gap.
        let truncated = apply.truncated_state.as_ref().map_or(0, |t| t.index);
        if ctx.log.entry_count(region_id) > 0 && ctx.log.first_index(region_id).is_some_and(|f| f <= truncated) {
            tracing::info!(region_id, truncated, "dropping raft log entries the applied state already covers");
            drop_durable(ctx.log.compact(region_id, truncated + 1)?);
        }
        ctx.report_range(region_id, Some(&region));
        let mut peer = Peer::new(ctx, region, me, apply)?;
        peer.set_handover_seq(s.state.handover_seq);
        ctx.count_region(1);
        peers.insert(region_id, peer);
    }
    // Logs with entries but no live region here: destroyed (tombstone here) or handed-over
    // (live on another shard) peers whose log removal the stop cut short. They would pin
    // segments forever (and confuse a later peer of the region). A log holding only a hard
    // state is an uninitialized peer's vote: kept. So is the log of a region no shard has any
    // state of: a region created by a split whose parent's apply state was not flushed yet
    // (RocksDB writes skip the WAL). Replaying the parent's log splits it off again, and its
    // new peer takes this log over — its votes and acknowledged entries are promises raft
    // relies on; dropping them let a lagging replica win an election without writes a quorum
    // had acknowledged.
    for region_id in ctx.log.regions() {
        if peers.contains_key(&region_id) || ctx.log.entry_count(region_id) == 0 {
            continue;
        }
        let elsewhere = ctx.directory.shard_of(region_id).is_some_and(|s| s != ctx.shard_id);
        if stored_here.contains(&region_id) || elsewhere {
            tracing::info!(region_id, "dropping the raft log of a region this shard no longer has");
            drop_durable(ctx.log.remove(region_id)?);
        } else {
            tracing::info!(region_id, "keeping the raft log of a region no shard has state of yet (a split to replay)");
        }
    }
    Ok(peers)
}

fn drop_durable(d: core_shard::log::Durable) {
    drop(d);
}

/// Shard 0: registers the store with every shard's address, then reports ready.
pub async fn register_store(
    ctx: &ShardCtx,
    addr: &str,
    ready: &flume::Sender<std::result::Result<(u64, Vec<String>), String>>,
) -> Result<()> {
    // Wait until every shard has published its address.
    let addrs = loop {
        let a = ctx.shared.shard_addrs.read().map(|a| a.clone()).unwrap_or_default();
        if a.iter().all(|s| !s.is_empty()) {
            break a;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    };
    let store = Store {
        id: ctx.store_id.get(),
        address: addr.to_string(),
        state: 0,
        shard_addresses: addrs.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        start_timestamp: pd::tso::now_ms(),
    };
    ctx.pd.put_store(store).await?;
    let _ = ready.send(Ok((ctx.store_id.get(), addrs)));
    Ok(())
}
