//! `percore-bench`: Percore's benchmark tool.
//!
//! Subcommands:
//! * `log` — the per-shard raft log engine: durable appends per second against a plain
//!   append + fdatasync baseline measured in the same run on the same directory.
//! * `tso` — PD's timestamp oracle through the batching PD client.
//! * `txn` — transactions of N keys (two-phase commit) beside raw batch puts, one run.
//! * `ycsb` — YCSB's core workloads against an embedded cluster, a running cluster or a
//!   Redis server; `plot` and `compare` read its JSON results back.

use clap::{Parser, Subcommand};

mod args;
mod latency;
mod log_bench;
mod tso_bench;
mod txn_bench;
mod ycsb;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Percore benchmarks.
#[derive(Parser, Debug)]
#[command(name = "percore-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Raft log engine: group-commit throughput and append→durable latency.
    Log(log_bench::LogArgs),
    /// PD's timestamp oracle: timestamps/s with batching, and request latency.
    Tso(tso_bench::TsoArgs),
    /// Transactions of N keys against an embedded cluster, beside raw batch puts.
    Txn(txn_bench::TxnArgs),
    /// YCSB workloads A–F (or a workload file) against an embedded cluster, a running
    /// cluster (--pd) or a Redis server (--redis).
    Ycsb(Box<ycsb::cli::YcsbArgs>),
    /// An SVG latency-percentile chart of YCSB JSON results.
    Plot(ycsb::plot::PlotArgs),
    /// Two YCSB JSON results side by side, with ratios.
    Compare(ycsb::compare::CompareArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(args) => log_bench::run(args),
        Command::Tso(args) => tso_bench::run(args),
        Command::Txn(args) => txn_bench::run(args),
        Command::Ycsb(args) => ycsb::run(*args),
        Command::Plot(args) => ycsb::plot::run(args),
        Command::Compare(args) => ycsb::compare::run(args),
    };
    if let Err(e) = result {
        eprintln!("percore-bench: {e:#}");
        std::process::exit(1);
    }
}
