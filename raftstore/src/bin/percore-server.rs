//! `percore-server`: one Percore store. Without `--pd` it starts an embedded PD in the same
//! process and bootstraps a single-node cluster in its data directory: one command gives a
//! working KV backend.

use std::path::PathBuf;

use clap::Parser;
use core_shard::placement::resolve_online;
use core_shard::runtime::signals::{block_termination_signals, wait_for_termination};
use raftstore::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Percore store.
#[derive(Parser, Debug)]
#[command(name = "percore-server", version, about)]
struct Args {
    /// PD address(es), comma-separated; without it an embedded PD runs in this process.
    #[arg(long)]
    pd: Option<String>,
    /// Address of shard 0; shard i listens on port + i [default: 127.0.0.1:20160].
    #[arg(long)]
    addr: Option<String>,
    /// Data directory [default: ./percore-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Shards (fixed when the store is created) [default: one per CPU].
    #[arg(long)]
    shards: Option<usize>,
    /// CPUs for the shards, e.g. 0-3,6.
    #[arg(long)]
    cpus: Option<String>,
    /// pack or spread.
    #[arg(long)]
    placement: Option<String>,
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the embedded PD [default: 127.0.0.1:2379].
    #[arg(long)]
    pd_addr: Option<String>,
    /// Log filter (tracing env-filter syntax), also read from RUST_LOG.
    #[arg(long, default_value = "info")]
    log: String,
}

fn fail(msg: &str) -> ! {
    eprintln!("percore-server: {msg}");
    std::process::exit(1);
}

fn config(args: &Args) -> Config {
    let mut cfg = match &args.config {
        Some(p) => Config::from_file(p).unwrap_or_else(|e| fail(&e.to_string())),
        None => Config::default(),
    };
    if let Some(a) = &args.addr {
        cfg.addr = a.clone();
    }
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if args.shards.is_some() {
        cfg.shards = args.shards;
    }
    if args.cpus.is_some() {
        cfg.cpus = args.cpus.clone();
    }
    if let Some(p) = &args.placement {
        cfg.placement = p.clone();
    }
    if let Some(p) = &args.pd {
        cfg.pd.endpoints = p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    if let Some(p) = &args.pd_addr {
        cfg.pd.embedded_addr = p.clone();
    }
    cfg.validate().unwrap_or_else(|e| fail(&e.to_string()));
    cfg
}

fn main() {
    let args = Args::parse();
    block_termination_signals();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| args.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Crash points armed by the FAILPOINTS environment variable (fault-suite builds only).
    #[cfg(feature = "failpoints")]
    let _failpoints = ::fail::FailScenario::setup();
    let cfg = config(&args);
    let placement = raftstore::server::placement_of(&cfg).unwrap_or_else(|e| fail(&e.to_string()));
    let embedded = if cfg.pd.endpoints.is_empty() {
        // The embedded PD shares the first shard's CPU: it is light.
        let pd_place = resolve_online(
            Some(1),
            Some(
                &core_shard::placement::CpuList::from_cpus([placement.cpus[0]])
                    .unwrap_or_else(|e| fail(&e.to_string())),
            ),
            Default::default(),
        )
        .unwrap_or_else(|e| fail(&e.to_string()));
        let pd =
            pd::PdServer::start(cfg.data_dir.join("pd"), &cfg.pd.embedded_addr, pd_place).unwrap_or_else(|e| fail(&e));
        eprintln!("percore-server: embedded PD on {}", pd.addr());
        Some(pd)
    } else {
        None
    };
    let endpoints = match &embedded {
        Some(pd) => vec![pd.addr().to_string()],
        None => cfg.pd.endpoints.clone(),
    };
    let store = raftstore::start_store(cfg, endpoints).unwrap_or_else(|e| fail(&e.to_string()));
    println!("percore-server store {} serving on {}", store.store_id(), store.addrs().join(","));
    let sig = wait_for_termination();
    tracing::info!(signal = sig, "shutting down");
    if let Err(e) = store.stop() {
        eprintln!("percore-server: {e}");
    }
    if let Some(pd) = embedded {
        pd.stop();
    }
}
