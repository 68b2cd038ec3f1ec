//! `percore-ctl` commands that talk to stores through the routing KV client: raw KV
//! (`get`, `put`, `delete`, `scan`) and operator requests to region leaders (`add-peer`,
//! `remove-peer`, `transfer-leader`, `split`). Routes come from PD.

use std::rc::Rc;
use std::time::Duration;

use clap::Subcommand;
use net::kv::{KvClient, KvConfig};
use net::proto::metapb::{Peer, PeerRole, Region};
use net::proto::raft_cmdpb::ConfChangeType;
use pd::{PdClient, RegionRoute};
use serde_json::{json, Value};

use super::{parse_key, print_regions, region_json, show_key};

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// The value of a key.
    Get {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
    /// Sets a key to a value.
    Put {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
        /// The value (UTF-8; prefix with 0x for hex).
        value: String,
    },
    /// Deletes a key.
    Delete {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
    /// Pairs in [start, end), in key order (descending with --reverse).
    Scan {
        /// First key (inclusive); default: the beginning.
        #[arg(long, default_value = "")]
        start: String,
        /// End key (exclusive); default: no end.
        #[arg(long, default_value = "")]
        end: String,
        /// At most this many pairs (0 = no limit).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// From the end downwards.
        #[arg(long)]
        reverse: bool,
    },
    /// Adds a peer of a region on a store (peer id from PD).
    AddPeer {
        /// The region id.
        #[arg(long)]
        region: u64,
        /// The store to add the peer on.
        #[arg(long)]
        store: u64,
        /// Add it as a learner (non-voting).
        #[arg(long)]
        learner: bool,
    },
    /// Removes a region's peer on a store.
    RemovePeer {
        /// The region id.
        #[arg(long)]
        region: u64,
        /// The store whose peer to remove.
        #[arg(long)]
        store: u64,
    },
    /// Asks a region's leader to hand leadership to its peer on a store.
    TransferLeader {
        /// The region id.
        #[arg(long)]
        region: u64,
        /// The store of the new leader.
        #[arg(long)]
        store: u64,
    },
    /// Splits the region containing a key at that key.
    Split {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
}

fn kv_error(e: net::kv::KvError) -> String {
    e.to_string()
}

/// Prints `v` as JSON, or `text` for humans.
pub fn say(json_out: bool, v: Value, text: impl FnOnce() -> String) {
    if json_out {
        println!("{v}");
    } else {
        println!("{}", text());
    }
}

fn print_region_list(json_out: bool, regions: &[Region]) {
    let routes: Vec<RegionRoute> =
        regions.iter().map(|r| RegionRoute { region: r.clone(), leader: None, leader_shard: None }).collect();
    if json_out {
        println!("{}", Value::Array(routes.iter().map(region_json).collect()));
    } else {
        print_regions(&routes);
    }
}

/// Runs a KV or operator command.
pub async fn run(pd: &PdClient, cmd: KvCommand, json_out: bool) -> Result<(), String> {
    let conn = net::ConnConfig { call_timeout: Duration::from_secs(5), ..net::ConnConfig::default() };
    let config = KvConfig { deadline: Duration::from_secs(10), conn, ..KvConfig::default() };
    let kv = KvClient::new(Rc::new(pd.clone()), config);
    match cmd {
        KvCommand::Get { key } => get(&kv, &key, json_out).await,
        KvCommand::Put { key, value } => {
            kv.put(parse_key(&key)?, parse_key(&value)?).await.map_err(kv_error)?;
            say(json_out, json!({"ok": true}), || "OK".into());
            Ok(())
        }
        KvCommand::Delete { key } => {
            kv.delete(parse_key(&key)?).await.map_err(kv_error)?;
            say(json_out, json!({"ok": true}), || "OK".into());
            Ok(())
        }
        KvCommand::Scan { start, end, limit, reverse } => scan(&kv, &start, &end, limit, reverse, json_out).await,
        KvCommand::AddPeer { region, store, learner } => add_peer(pd, &kv, region, store, learner, json_out).await,
        KvCommand::RemovePeer { region, store } => {
            let peer = peer_on_store(pd, region, store).await?;
            let r = kv.change_peer(region, ConfChangeType::RemoveNode, peer).await.map_err(kv_error)?;
            print_region_list(json_out, &[r]);
            Ok(())
        }
        KvCommand::TransferLeader { region, store } => {
            let peer = peer_on_store(pd, region, store).await?;
            kv.transfer_leader(region, peer.clone()).await.map_err(kv_error)?;
            let v = json!({"ok": true, "region": region, "peer": peer.id, "store": store});
            say(json_out, v, || format!("transfer of region {region}'s leadership to peer {} requested", peer.id));
            Ok(())
        }
        KvCommand::Split { key } => {
            let (left, right) = kv.split(parse_key(&key)?).await.map_err(kv_error)?;
            print_region_list(json_out, &[left, right]);
            Ok(())
        }
    }
}

async fn get(kv: &KvClient, key: &str, json_out: bool) -> Result<(), String> {
    let value = kv.get(parse_key(key)?).await.map_err(kv_error)?;
    let shown = value.as_deref().map(show_key);
    let v = json!({"key": key, "found": value.is_some(), "value": shown});
    say(json_out, v, || shown.clone().unwrap_or_else(|| "(not found)".into()));
    Ok(())
}

async fn scan(kv: &KvClient, start: &str, end: &str, limit: u32, reverse: bool, json_out: bool) -> Result<(), String> {
    let pairs = kv.scan(parse_key(start)?, parse_key(end)?, limit, reverse, false).await.map_err(kv_error)?;
    if json_out {
        let v: Vec<Value> = pairs.iter().map(|(k, v)| json!({"key": show_key(k), "value": show_key(v)})).collect();
        println!("{}", Value::Array(v));
    } else {
        for (k, v) in &pairs {
            println!("{}\t{}", show_key(k), show_key(v));
        }
        println!("({} pairs)", pairs.len());
    }
    Ok(())
}

async fn add_peer(
    pd: &PdClient,
    kv: &KvClient,
    region: u64,
    store: u64,
    learner: bool,
    json_out: bool,
) -> Result<(), String> {
    let id = pd.alloc_id().await.map_err(|e| e.to_string())?;
    let (role, change) = if learner {
        (PeerRole::Learner, ConfChangeType::AddLearnerNode)
    } else {
        (PeerRole::Voter, ConfChangeType::AddNode)
    };
    let peer = Peer { id, store_id: store, role: role as i32 };
    let r = kv.change_peer(region, change, peer).await.map_err(kv_error)?;
    print_region_list(json_out, &[r]);
    Ok(())
}

/// Region `region`'s peer on `store`, as PD knows it.
async fn peer_on_store(pd: &PdClient, region: u64, store: u64) -> Result<Peer, String> {
    let route = pd.get_region_by_id(region).await.map_err(|e| e.to_string())?;
    route
        .region
        .peers
        .into_iter()
        .find(|p| p.store_id == store)
        .ok_or_else(|| format!("region {region} has no peer on store {store}"))
}
