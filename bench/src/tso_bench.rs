//! `percore-bench tso`: timestamps per second from a running PD.
//!
//! `--concurrency` tasks per client thread each ask for one timestamp at a time, in a
//! closed loop, through one `PdClient` per thread, which batches concurrent requests into
//! one RPC. Reported: timestamps/s, RPCs/s, the average batch, and the latency of one
//! timestamp request. Every task checks that its timestamps strictly increase.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use core_shard::placement::{format_cpus, resolve_online, CpuList, PlacementPolicy};
use core_shard::runtime::{PoolConfig, ShardPool};
use hdrhistogram::Histogram;
use pd::{PdClient, PdClientConfig};
use serde_json::json;

use crate::args::parse_duration;
use crate::latency::{new_histogram, record, round1, Summary};

/// Arguments of `percore-bench tso`.
#[derive(clap::Args, Debug, Clone)]
pub struct TsoArgs {
    /// PD address.
    #[arg(long, default_value = "127.0.0.1:2379")]
    pub pd: String,
    /// Outstanding timestamp requests per client thread.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Client threads, each with its own connection.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs of the client threads [default: the last online CPUs, away from a PD on CPU 0].
    #[arg(long)]
    pub cpus: Option<CpuList>,
    /// Measured time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

struct ThreadResult {
    timestamps: u64,
    rpcs: u64,
    violations: u64,
    errors: u64,
    hist: Histogram<u64>,
}

/// Runs the benchmark.
pub fn run(args: TsoArgs) -> anyhow::Result<()> {
    let cpus = match &args.cpus {
        Some(c) => c.clone(),
        None => {
            let all = resolve_online(None, None, PlacementPolicy::Pack)?.cpus;
            let mut last: Vec<usize> = all.iter().rev().take(args.threads).copied().collect();
            last.reverse();
            CpuList::from_cpus(last)?
        }
    };
    let placement = resolve_online(Some(args.threads), Some(&cpus), PlacementPolicy::Spread)?;
    if !args.json {
        eprintln!(
            "percore-bench tso: PD {}, {} thread(s) on cpus {}, concurrency {} per thread, {:?} (+{:?} warm-up)",
            args.pd,
            args.threads,
            format_cpus(&placement.cpus),
            args.concurrency,
            args.duration,
            args.warmup
        );
    }
    let a = args.clone();
    let pool =
        ShardPool::<(), Result<ThreadResult, String>>::start(PoolConfig::new("tso-bench", placement), move |_| {
            let a = a.clone();
            async move { drive(a).await }
        })?;
    let mut hist = new_histogram();
    let (mut ts, mut rpcs, mut violations, mut errors) = (0u64, 0u64, 0u64, 0u64);
    for r in pool.join() {
        let r = r?.map_err(anyhow::Error::msg)?;
        hist.add(&r.hist).ok();
        ts += r.timestamps;
        rpcs += r.rpcs;
        violations += r.violations;
        errors += r.errors;
    }
    let secs = args.duration.as_secs_f64();
    let s = Summary::of(&hist);
    let out = json!({
        "bench": "tso",
        "threads": args.threads,
        "concurrency": args.concurrency,
        "duration_s": secs,
        "timestamps_per_sec": round1(ts as f64 / secs),
        "rpcs_per_sec": round1(rpcs as f64 / secs),
        "avg_batch": round1(if rpcs > 0 { ts as f64 / rpcs as f64 } else { 0.0 }),
        "p50_us": round1(s.p50_us),
        "p99_us": round1(s.p99_us),
        "p999_us": round1(s.p999_us),
        "max_us": round1(s.max_us),
        "errors": errors,
        "order_violations": violations,
    });
    if args.json {
        println!("{out}");
    } else {
        println!(
            "timestamps/s {}   RPCs/s {}   avg batch {}",
            out["timestamps_per_sec"], out["rpcs_per_sec"], out["avg_batch"]
        );
        println!(
            "latency of one timestamp: p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            out["p50_us"], out["p99_us"], out["p999_us"], out["max_us"]
        );
        println!("errors {}, order violations {}", errors, violations);
    }
    if errors > 0 || violations > 0 {
        anyhow::bail!("{errors} failed requests, {violations} timestamps out of order");
    }
    Ok(())
}

async fn drive(args: TsoArgs) -> Result<ThreadResult, String> {
    let client = PdClient::new(PdClientConfig::new(vec![args.pd.clone()]));
    // One request first: fail fast if PD is not there.
    client.get_ts().await.map_err(|e| format!("PD at {}: {e}", args.pd))?;
    let start = Instant::now();
    let warm_end = start + args.warmup;
    let end = warm_end + args.duration;
    let hist = Rc::new(RefCell::new(new_histogram()));
    let counts = Rc::new(Cell::new((0u64, 0u64, 0u64))); // done, violations, errors
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, hist, counts) = (client.clone(), hist.clone(), counts.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut last = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = client.get_ts().await;
                let t1 = Instant::now();
                let (mut done, mut viol, mut errs) = counts.get();
                match r {
                    Ok(ts) => {
                        if ts <= last {
                            viol += 1;
                        }
                        last = ts;
                        if t0 >= warm_end && t1 <= end {
                            record(&mut hist.borrow_mut(), t1 - t0);
                            done += 1;
                        }
                    }
                    Err(_) => errs += 1,
                }
                counts.set((done, viol, errs));
            }
        }));
    }
    // RPC counter at the window's edges.
    let c2 = client.clone();
    let sampler = glommio::spawn_local(async move {
        glommio::timer::sleep(warm_end.saturating_duration_since(Instant::now())).await;
        let before = c2.stats().tso_rpcs;
        glommio::timer::sleep(end.saturating_duration_since(Instant::now())).await;
        c2.stats().tso_rpcs - before
    });
    for t in tasks {
        t.await;
    }
    let rpcs = sampler.await;
    let (timestamps, violations, errors) = counts.get();
    let hist = hist.borrow().clone();
    Ok(ThreadResult { timestamps, rpcs, violations, errors, hist })
}
