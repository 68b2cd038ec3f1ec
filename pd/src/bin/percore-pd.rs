//! `percore-pd`: the placement driver server.

use std::path::PathBuf;

use clap::Parser;
use core_shard::placement::{resolve_online, CpuList, PlacementPolicy};
use core_shard::runtime::signals::{block_termination_signals, wait_for_termination};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Percore's placement driver.
#[derive(Parser, Debug)]
#[command(name = "percore-pd", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:2379")]
    addr: String,
    /// Directory of PD's persistent state.
    #[arg(long, default_value = "./percore-pd-data")]
    data_dir: PathBuf,
    /// CPU to run on [default: the first by --placement].
    #[arg(long)]
    cpus: Option<CpuList>,
    /// Log filter (tracing env-filter syntax), also read from RUST_LOG.
    #[arg(long, default_value = "info")]
    log: String,
}

fn main() {
    let args = Args::parse();
    block_termination_signals();
    // The fmt subscriber writes to stderr from the calling thread: it starts no thread.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| args.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let placement = match resolve_online(Some(1), args.cpus.as_ref(), PlacementPolicy::Spread) {
        Ok(p) => p,
        Err(e) => fail(&e.to_string()),
    };
    let server = match pd::PdServer::start(args.data_dir.clone(), &args.addr, placement) {
        Ok(s) => s,
        Err(e) => fail(&e),
    };
    println!("percore-pd listening on {}", server.addr());
    let sig = wait_for_termination();
    tracing::info!(signal = sig, "shutting down");
    server.stop();
}

fn fail(msg: &str) -> ! {
    eprintln!("percore-pd: {msg}");
    std::process::exit(1);
}
