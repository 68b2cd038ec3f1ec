//! `percore-chaos`: PD and stores as real processes on loopback, killed (-9), paused and
//! restarted at random while clients run; then linearizability and durability are checked.
//!
//! ```text
//! percore-chaos --duration 300s [--workload registers|bank] [--stores 3] [--clients 6] [--keys 4]
//!               [--seed N] [--bin-dir DIR] [--log-dir DIR]
//! ```
//! Exits 0 when the checks pass (registers: the history is linearizable and every
//! acknowledged write is there; bank: every snapshot balances, every committed transfer
//! counts once, the history is snapshot-isolated), 1 if not,
//! 2 on a usage or set-up error. `percore-pd` and `percore-server` are looked up next to this
//! program unless `--bin-dir` says otherwise.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use percore_tests::chaos::{self, ChaosConfig, ChaosWorkload};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "percore-chaos", about = "Process chaos against real percore-pd and percore-server processes")]
struct Args {
    /// How long faults are injected (e.g. 300s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Stores (at least 3).
    #[arg(long, default_value_t = 3)]
    stores: usize,
    /// Clients on the shared registers.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// Shared registers.
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Seed of the fault schedule (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where percore-pd and percore-server are.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// What the clients run: `registers` (raw KV, linearizability) or `bank` (transactions,
    /// snapshot isolation; 20 accounts, 4 transfer loops, 2 snapshot readers).
    #[arg(long, default_value = "registers", value_parser = parse_workload)]
    workload: ChaosWorkload,
    /// Keep every process's info log here (`pd.log`, `s0.log`, …; appended across restarts).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

fn parse_workload(s: &str) -> Result<ChaosWorkload, String> {
    match s {
        "registers" => Ok(ChaosWorkload::Registers),
        "bank" => Ok(ChaosWorkload::Bank),
        _ => Err(format!("unknown workload {s:?}: registers or bank")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}: expected e.g. 30s or 5m"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("bad duration unit in {s:?}: use ms, s or m")),
    }
}

fn main() {
    let args = Args::parse();
    if args.stores < 3 || args.clients == 0 || args.keys == 0 {
        eprintln!("percore-chaos: need --stores ≥ 3, --clients ≥ 1 and --keys ≥ 1");
        std::process::exit(2);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let cfg = ChaosConfig {
        stores: args.stores,
        duration: args.duration,
        clients: args.clients,
        keys: args.keys,
        seed,
        bin_dir: args.bin_dir,
        workload: args.workload,
        log_dir: args.log_dir,
    };
    match cfg.workload {
        ChaosWorkload::Registers => println!(
            "percore-chaos: {} stores, {:?} of faults, {} clients on {} keys, seed {seed}",
            cfg.stores, cfg.duration, cfg.clients, cfg.keys
        ),
        ChaosWorkload::Bank => {
            println!("percore-chaos: bank on {} stores, {:?} of faults, seed {seed}", cfg.stores, cfg.duration)
        }
    }
    match chaos::run(&cfg) {
        Ok(r) => {
            println!("faults injected ({}):", r.faults.len());
            for f in &r.faults {
                println!("  {f}");
            }
            println!("{}", r.summary);
            if r.ok {
                println!("OK: every check passed");
            } else {
                println!("FAILED: a check failed");
                std::process::exit(1);
            }
        }
        Err(e) => {
            println!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}
