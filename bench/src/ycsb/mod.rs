//! `percore-bench ycsb`: YCSB's core workloads against an embedded Percore cluster (the
//! default), a running one (`--pd`), or any Redis-protocol server (`--redis`), so that one
//! tool measures them side by side.
//!
//! * [`workload`], [`properties`]: workloads A–F and YCSB properties files;
//! * [`generator`], [`counter`], [`keys`], [`ops`]: YCSB's generators (scrambled zipfian
//!   θ = 0.99, uniform, latest), key naming and the per-thread operation generator;
//! * [`target`] (the trait), [`percore`], [`redis`] with [`resp`], and [`spec`] (which one,
//!   connected): what the operations run against;
//! * [`embedded`], [`cpus`]: the in-process cluster and the CPU split between it and the
//!   client;
//! * [`runner`], [`worker`], [`progress`], [`stats`]: client threads, concurrency,
//!   throttling, warm-up, progress lines and measurements;
//! * [`report`]: the table, JSON and HdrHistogram files; [`plot`] and [`compare`] read the
//!   JSON back.

pub mod cli;
pub mod compare;
pub mod counter;
pub mod cpus;
pub mod embedded;
pub mod generator;
pub mod keys;
pub mod ops;
pub mod percore;
pub mod plot;
pub mod progress;
pub mod properties;
pub mod redis;
pub mod report;
pub mod resp;
pub mod runner;
pub mod spec;
pub mod stats;
pub mod target;
pub mod worker;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use core_shard::placement::{resolve_online, PlacementPolicy};

use cli::{Phases, YcsbArgs};
use cpus::CpuPlan;
use embedded::{EmbeddedCluster, EmbeddedOptions};
use report::{PhaseReport, Report, TargetInfo};
use runner::{ClientConfig, PhaseResult, PhaseSpec};
use spec::TargetSpec;
use worker::{Phase, Shared};

/// Runs the benchmark: load and/or run, then the report. Fails (exit status 1) when any
/// operation failed or a phase hit `--max-time`.
pub fn run(args: YcsbArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    args.check().map_err(anyhow::Error::msg)?;
    let workload = args.workload()?;
    let run_ops = args.run_ops(&workload).map_err(anyhow::Error::msg)?;
    let online = resolve_online(None, None, PlacementPolicy::Pack)?.cpus;
    let mut online_sorted = online.clone();
    online_sorted.sort_unstable();
    let plan = CpuPlan::new(
        &online_sorted,
        args.threads,
        args.is_embedded(),
        args.cpus.as_ref().map(|c| c.cpus()),
        args.client_cpus.as_ref().map(|c| c.cpus()),
    );
    let shards = args.shards.unwrap_or(plan.server.len().max(1));
    eprintln!(
        "percore-bench ycsb: workload {}, {} records, {} thread(s) × {} outstanding; {}",
        workload.name,
        workload.recordcount,
        args.threads,
        args.concurrency,
        plan.describe(args.threads)
    );
    let cluster = match args.is_embedded() {
        true => Some(start_cluster(&args, &plan, shards)?),
        false => None,
    };
    let (spec, address) = match (&cluster, &args.pd, &args.redis) {
        (Some(c), _, _) => (TargetSpec::Percore { pd: c.pd_addr().to_string() }, c.pd_addr().to_string()),
        (None, Some(pd), _) => (TargetSpec::Percore { pd: pd.clone() }, pd.clone()),
        (None, None, Some(addr)) => {
            (TargetSpec::Redis { addr: addr.clone(), scan_index: workload.scanproportion > 0.0 }, addr.clone())
        }
        (None, None, None) => unreachable!("no --pd and no --redis means embedded"),
    };
    let shared = Arc::new(Shared::new(workload.clone(), spec));
    let client = ClientConfig {
        threads: args.threads,
        concurrency: args.concurrency,
        cpus: plan.client.clone(),
        target_rate: args.target,
        progress: args.progress.0,
        server_busy: cluster.as_ref().map(|c| c.busy_probe()),
    };
    let results = run_phases(&args, &shared, &client, run_ops);
    if let Some(c) = cluster {
        c.stop()?;
    }
    let results = results?;
    let info = target_info(&args, &plan, shards, address);
    finish(&args, workload, info, &results)
}

fn start_cluster(args: &YcsbArgs, plan: &CpuPlan, shards: usize) -> anyhow::Result<EmbeddedCluster> {
    let opts = EmbeddedOptions {
        stores: args.stores,
        shards,
        cpus: plan.server.clone(),
        dir: args.dir.clone(),
        config: args.store_config.clone(),
    };
    let t = std::time::Instant::now();
    let c = EmbeddedCluster::start(&opts)?;
    eprintln!(
        "embedded cluster: PD {} and {} store(s) × {} shard(s){}, data in {} ({:.1} s to start{})",
        c.pd_addr(),
        args.stores,
        shards,
        if opts.cpus_shared() { " sharing their CPUs (no spinning)" } else { "" },
        c.data_dir().display(),
        t.elapsed().as_secs_f64(),
        if args.stores > 1 { " and replicate" } else { "" }
    );
    Ok(c)
}

fn run_phases(
    args: &YcsbArgs,
    shared: &Arc<Shared>,
    client: &ClientConfig,
    run_ops: Option<u64>,
) -> anyhow::Result<Vec<PhaseResult>> {
    let mut results = Vec::new();
    if args.phase != Phases::Run {
        let spec = PhaseSpec {
            phase: Phase::Load,
            warmup: Duration::ZERO,
            duration: None,
            ops: None,
            max_time: args.max_time,
        };
        results.push(runner::run_phase(shared, client, spec)?);
    }
    if args.phase != Phases::Load {
        let spec = PhaseSpec {
            phase: Phase::Run,
            warmup: args.warmup,
            duration: args.duration,
            ops: run_ops,
            max_time: args.warmup + args.max_time,
        };
        results.push(runner::run_phase(shared, client, spec)?);
    }
    Ok(results)
}

fn target_info(args: &YcsbArgs, plan: &CpuPlan, shards: usize, address: String) -> TargetInfo {
    let embedded = args.is_embedded();
    TargetInfo {
        kind: if embedded {
            "embedded"
        } else if args.pd.is_some() {
            "pd"
        } else {
            "redis"
        }
        .into(),
        address,
        stores: embedded.then_some(args.stores),
        shards: embedded.then_some(shards),
        server_cpus: embedded.then(|| plan.server.clone()),
        client_cpus: plan.client.clone(),
        cpus_shared: embedded.then_some(plan.shared),
        cpus: plan.describe(args.threads),
    }
}

/// Prints and writes the report; fails if anything failed.
fn finish(
    args: &YcsbArgs,
    workload: workload::Workload,
    target: TargetInfo,
    results: &[PhaseResult],
) -> anyhow::Result<()> {
    let label = args.label.clone().unwrap_or_else(|| match target.kind.as_str() {
        "embedded" => {
            format!("percore-{}x{} {}", target.stores.unwrap_or(1), target.shards.unwrap_or(1), workload.name)
        }
        kind => format!("{kind} {}", workload.name),
    });
    let report = Report {
        bench: "ycsb".into(),
        label,
        target,
        workload,
        threads: args.threads,
        concurrency: args.concurrency,
        target_ops_per_sec: args.target,
        warmup_s: args.warmup.as_secs_f64(),
        phases: results.iter().map(PhaseReport::of).collect(),
    };
    report::print_table(&report);
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(prefix) = &args.hdr {
        for r in results {
            for p in report::write_hgrm_files(prefix, r)? {
                eprintln!("wrote {}", p.display());
            }
        }
    }
    let errors = report.errors();
    let timed_out = results.iter().any(|r| r.timed_out);
    if errors > 0 || timed_out {
        anyhow::bail!(
            "{errors} operation(s) failed{}",
            if timed_out { " and a phase was stopped by --max-time" } else { "" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
