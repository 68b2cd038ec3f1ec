//! `percore-pd`: the placement driver server.

use std::path::PathBuf;

use clap::Parser;
use core_shard::placement::{resolve_online, CpuList, PlacementPolicy};
use core_shard::runtime::signals::{block_termination_signals, wait_for_termination};
use core_shard::runtime::{PoolConfig, ShardPool};

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
    let addr = args.addr.clone();
    let dir = args.data_dir.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
    let pool = ShardPool::<(), ()>::start(PoolConfig::new("pd", placement), move |shard| {
        let (addr, dir, ready) = (addr.clone(), dir.clone(), ready_tx.clone());
        async move {
            let pd = match pd::Pd::open(&dir) {
                Ok(pd) => pd,
                Err(e) => return drop(ready.send(Err(e.to_string()))),
            };
            let listener = match glommio::net::TcpListener::bind(&addr) {
                Ok(l) => l,
                Err(e) => return drop(ready.send(Err(format!("cannot listen on {addr}: {e}")))),
            };
            let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
            let stop = shard.shutdown.clone();
            let server =
                pd::server::spawn_server(pd, listener, net::ConnConfig::default(), async move { stop.wait().await });
            let _ = ready.send(Ok(local));
            server.await;
        }
    });
    let pool = match pool {
        Ok(p) => p,
        Err(e) => fail(&e.to_string()),
    };
    match ready_rx.recv() {
        Ok(Ok(local)) => {
            println!("percore-pd listening on {local}");
        }
        Ok(Err(e)) => {
            pool.shutdown();
            let _ = pool.join();
            fail(&e)
        }
        Err(_) => fail("PD shard exited before it was ready"),
    }
    let sig = wait_for_termination();
    tracing::info!(signal = sig, "shutting down");
    pool.shutdown();
    for r in pool.join() {
        if let Err(e) = r {
            fail(&e.to_string());
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("percore-pd: {msg}");
    std::process::exit(1);
}
