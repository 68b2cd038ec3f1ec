//! `percore-ctl`: the operator CLI.

#[path = "percore-ctl/kv.rs"]
mod kv;
#[path = "percore-ctl/sched.rs"]
mod sched;
#[path = "percore-ctl/txn.rs"]
mod txn;

use clap::{Parser, Subcommand};
use net::proto::metapb::{Region, Store};
use pd::{PdClient, PdClientConfig, RegionRoute};
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Percore's operator CLI.
#[derive(Parser, Debug)]
#[command(name = "percore-ctl", version, about)]
struct Cli {
    /// PD address.
    #[arg(long, default_value = "127.0.0.1:2379", global = true)]
    pd: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Cluster id, bootstrap state, counts, ID and TSO high-water marks.
    Cluster,
    /// Every store.
    Stores,
    /// Every region, in key order.
    Regions {
        /// At most this many (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// The region containing a key, or with an id.
    Region {
        /// The key (UTF-8; prefix with 0x for hex).
        key: Option<String>,
        /// The region id instead of a key.
        #[arg(long)]
        id: Option<u64>,
    },
    /// A timestamp from the TSO.
    Tso,
    /// A fresh id from the ID allocator.
    AllocId,
    #[command(flatten)]
    Kv(kv::KvCommand),
    /// One-shot transactions: get, put, delete, scan (Percolator, timestamps from PD).
    #[command(subcommand)]
    Txn(txn::TxnCommand),
    /// Everything stored for a transactional key: its lock, write records and long values.
    Mvcc {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
    /// The MVCC GC safe point and each store's GC progress; with --safe-point or --keep,
    /// resolve older locks and raise it.
    Gc {
        /// The new safe point (a TSO timestamp).
        #[arg(long)]
        safe_point: Option<u64>,
        /// Keep this much history: the safe point becomes now minus this (e.g. 10m, 1h).
        #[arg(long, value_parser = parse_keep)]
        keep: Option<std::time::Duration>,
    },
    /// Running operators (with --all, also recently finished ones).
    Operators {
        /// Include finished operators.
        #[arg(long)]
        all: bool,
    },
    /// Add or cancel an operator by hand.
    #[command(subcommand)]
    Operator(sched::OperatorCommand),
    /// List, pause, resume and configure the schedulers.
    #[command(subcommand)]
    Scheduler(sched::SchedulerCommand),
}

fn main() {
    // Output piped into `head` and the like: end quietly when the reader goes away, as Unix
    // tools do, instead of panicking on the failed write.
    // SAFETY: resetting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = glommio::LocalExecutorBuilder::default()
        .io_memory(256 << 10)
        .spawn(move || async move { run(cli).await })
        .map_err(|e| e.to_string())
        .and_then(|h| h.join().map_err(|e| e.to_string()));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("percore-ctl: {e}");
            std::process::exit(1);
        }
    }
}

/// A duration like 90s, 10m, 2h or 1d.
fn parse_keep(s: &str) -> Result<std::time::Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?} (e.g. 90s, 10m, 2h, 1d)"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("bad duration unit in {s:?} (s, m, h or d)")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

fn parse_key(s: &str) -> Result<Vec<u8>, String> {
    match s.strip_prefix("0x") {
        Some(hex) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16).map_err(|_| format!("bad hex key {s}")))
            .collect(),
        None => Ok(s.as_bytes().to_vec()),
    }
}

/// Printable key: UTF-8 if it is, hex otherwise.
fn show_key(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
        _ => format!("0x{}", k.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

fn store_json(s: &Store) -> Value {
    json!({"id": s.id, "address": s.address, "state": s.state, "shard_addresses": s.shard_addresses, "version": s.version})
}

fn region_json(r: &RegionRoute) -> Value {
    let reg: &Region = &r.region;
    let epoch = reg.region_epoch.clone().unwrap_or_default();
    json!({
        "id": reg.id,
        "start_key": show_key(&reg.start_key),
        "end_key": show_key(&reg.end_key),
        "conf_ver": epoch.conf_ver,
        "version": epoch.version,
        "peers": reg.peers.iter().map(|p| json!({"id": p.id, "store_id": p.store_id, "role": p.role})).collect::<Vec<_>>(),
        "leader": r.leader.as_ref().map(|l| json!({"id": l.id, "store_id": l.store_id})),
        "leader_shard": r.leader_shard,
    })
}

fn print_regions(regions: &[RegionRoute]) {
    println!(
        "{:>8}  {:<20} {:<20} {:>8} {:>8}  {:<24} {:>7} {:>5}",
        "id", "start", "end", "conf_ver", "version", "peers (id@store)", "leader", "shard"
    );
    for r in regions {
        let v = region_json(r);
        let peers: Vec<String> = r.region.peers.iter().map(|p| format!("{}@{}", p.id, p.store_id)).collect();
        println!(
            "{:>8}  {:<20} {:<20} {:>8} {:>8}  {:<24} {:>7} {:>5}",
            r.region.id,
            v["start_key"].as_str().unwrap_or(""),
            v["end_key"].as_str().unwrap_or(""),
            v["conf_ver"],
            v["version"],
            peers.join(","),
            r.leader.as_ref().map_or("-".to_string(), |l| l.id.to_string()),
            r.leader_shard.map_or("-".to_string(), |s| s.to_string()),
        );
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = PdClientConfig::new(vec![cli.pd.clone()]);
    config.deadline = std::time::Duration::from_secs(5);
    let pd = PdClient::new(config);
    let e = |e: pd::PdError| e.to_string();
    match cli.command {
        Command::Cluster => {
            let i = pd.cluster_info().await.map_err(e)?;
            let v = json!({
                "cluster_id": pd.cluster_id(),
                "bootstrapped": i.bootstrapped,
                "stores": i.store_count,
                "regions": i.region_count,
                "id_high_water": i.id_high_water,
                "tso_high_water_ms": i.tso_high_water_ms,
            });
            if cli.json {
                println!("{v}");
            } else {
                for (k, val) in v.as_object().into_iter().flatten() {
                    println!("{k:<18} {val}");
                }
            }
        }
        Command::Stores => {
            let stores = pd.get_all_stores().await.map_err(e)?;
            if cli.json {
                let v: Vec<Value> = stores
                    .iter()
                    .map(|(s, st)| {
                        let mut j = store_json(s);
                        j["region_count"] = json!(st.region_count);
                        j["leader_count"] = json!(st.leader_count);
                        j["last_heartbeat_ms"] = json!(st.last_heartbeat_ms);
                        j
                    })
                    .collect();
                println!("{}", Value::Array(v));
            } else {
                println!("{:>6}  {:<22} {:>6} {:>8} {:>8}  shards", "id", "address", "state", "regions", "leaders");
                for (s, st) in &stores {
                    println!(
                        "{:>6}  {:<22} {:>6} {:>8} {:>8}  {}",
                        s.id,
                        s.address,
                        s.state,
                        st.region_count,
                        st.leader_count,
                        s.shard_addresses.join(",")
                    );
                }
            }
        }
        Command::Regions { limit } => {
            let regions = pd.scan_regions(b"", b"", limit).await.map_err(e)?;
            if cli.json {
                println!("{}", Value::Array(regions.iter().map(region_json).collect()));
            } else {
                print_regions(&regions);
            }
        }
        Command::Region { key, id } => {
            let route = match (key, id) {
                (_, Some(id)) => pd.get_region_by_id(id).await.map_err(e)?,
                (Some(k), None) => pd.get_region(&parse_key(&k)?).await.map_err(e)?,
                (None, None) => return Err("give a key or --id".into()),
            };
            if cli.json {
                println!("{}", region_json(&route));
            } else {
                print_regions(&[route]);
            }
        }
        Command::Tso => {
            let ts = pd.get_ts().await.map_err(e)?;
            let (physical, logical) = pd::tso::split(ts);
            if cli.json {
                println!("{}", json!({"ts": ts, "physical_ms": physical, "logical": logical}));
            } else {
                println!("{ts}  (physical {physical} ms, logical {logical})");
            }
        }
        Command::AllocId => {
            let id = pd.alloc_id().await.map_err(e)?;
            if cli.json {
                println!("{}", json!({"id": id}));
            } else {
                println!("{id}");
            }
        }
        Command::Kv(cmd) => kv::run(&pd, cmd, cli.json).await?,
        Command::Txn(cmd) => txn::run(&pd, cmd, cli.json).await?,
        Command::Mvcc { key } => txn::mvcc(&pd, &key, cli.json).await?,
        Command::Gc { safe_point, keep } => txn::gc(&pd, safe_point, keep, cli.json).await?,
        Command::Operators { all } => sched::list_operators(&pd, all, cli.json).await?,
        Command::Operator(cmd) => sched::operator(&pd, cmd, cli.json).await?,
        Command::Scheduler(cmd) => sched::scheduler(&pd, cmd, cli.json).await?,
    }
    Ok(())
}
