//! `percore-bench txn`: transactions of `--keys` keys against an embedded cluster, side by
//! side with raw batch puts of the same keys in the same run.
//!
//! The key space (`--records` keys) is split into `--regions` regions first; an operation
//! writes `--keys` keys spread evenly over the key space (so 2 keys land in 2 regions when
//! there are 2). Two phases on one client thread, `--concurrency` operations in flight, each
//! `--duration` long: raw (`KvClient::batch_put` of the keys) then txn (begin, put the keys,
//! commit — in one phase when the keys share a region, otherwise two; a retryable failure
//! counts as an abort and the operation is retried). Reported: operations/s of each, their
//! ratio, the share committed in one phase, aborts, and latencies — of the whole transaction
//! and of its prewrite and (two-phase only) commit phases.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use net::kv::{KvClient, KvConfig, TxnClient, TxnConfig};
use serde_json::json;

use crate::args::parse_duration;
use crate::latency::{new_histogram, record, round1, Summary};
use crate::ycsb::embedded::{EmbeddedCluster, EmbeddedOptions};

/// Arguments of `percore-bench txn`.
#[derive(clap::Args, Debug, Clone)]
pub struct TxnArgs {
    /// Keys written per operation (spread over the key space).
    #[arg(long, default_value_t = 2)]
    pub keys: usize,
    /// Keys in the key space.
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Regions the key space is split into first.
    #[arg(long, default_value_t = 2)]
    pub regions: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Stores of the embedded cluster (every region on all of them).
    #[arg(long, default_value_t = 1)]
    pub stores: usize,
    /// CPU of the cluster (PD and the shards).
    #[arg(long, default_value_t = 0)]
    pub server_cpu: usize,
    /// CPU of the client thread.
    #[arg(long, default_value_t = 1)]
    pub client_cpu: usize,
    /// Operations in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured time of each phase.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up of each phase, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Wait for the secondaries' commit before a transaction counts as done (default: they
    /// commit in the background, `TxnConfig::async_secondaries`).
    #[arg(long)]
    pub wait_secondaries: bool,
    /// Never ask for one-phase commit (`TxnConfig::one_pc` off).
    #[arg(long)]
    pub no_one_pc: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("txn-{i:08}"))
}

/// What one phase measured.
#[derive(Default)]
struct Phase {
    ops: u64,
    /// Transactions committed in one phase.
    one_pc: u64,
    aborts: u64,
    errors: u64,
    first_error: Option<String>,
    total: Option<Histogram<u64>>,
    prewrite: Option<Histogram<u64>>,
    commit: Option<Histogram<u64>>,
}

impl Phase {
    fn new() -> Self {
        Phase {
            total: Some(new_histogram()),
            prewrite: Some(new_histogram()),
            commit: Some(new_histogram()),
            ..Default::default()
        }
    }
}

fn summary(h: &Option<Histogram<u64>>) -> Summary {
    h.as_ref().map(Summary::of).unwrap_or_default()
}

/// Runs the benchmark.
pub fn run(args: TxnArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.keys >= 1 && args.keys <= args.records, "--keys must be between 1 and --records");
    anyhow::ensure!(args.regions >= 1 && args.regions <= args.records, "--regions must be between 1 and --records");
    let cluster = EmbeddedCluster::start(&EmbeddedOptions {
        stores: args.stores,
        shards: 1,
        cpus: vec![args.server_cpu],
        dir: None,
        config: None,
    })?;
    let pd_addr = cluster.pd_addr().to_string();
    let a = args.clone();
    let result = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(args.client_cpu))
        .name("txn-bench")
        .io_memory(256 << 10)
        .spawn(move || async move { drive(&a, &pd_addr).await })
        .map_err(|e| anyhow::anyhow!("client executor: {e}"))?
        .join()
        .map_err(|e| anyhow::anyhow!("client executor: {e}"))?;
    cluster.stop()?;
    let (raw, txn) = result?;
    report(&args, &raw, &txn);
    Ok(())
}

async fn drive(args: &TxnArgs, pd_addr: &str) -> anyhow::Result<(Phase, Phase)> {
    let pd = Rc::new(pd::PdClient::new(pd::PdClientConfig::new(vec![pd_addr.to_string()])));
    let kv = KvClient::new(pd.clone(), KvConfig::default());
    for r in 1..args.regions {
        kv.split(key(r * args.records / args.regions)).await.map_err(|e| anyhow::anyhow!("split: {e}"))?;
    }
    let config =
        TxnConfig { async_secondaries: !args.wait_secondaries, one_pc: !args.no_one_pc, ..TxnConfig::default() };
    let txn = TxnClient::new(kv.clone(), pd, config);
    let raw_kv = kv.clone();
    let raw = run_phase(args, Rc::new(RefCell::new(Phase::new())), move |keys, value, out| {
        let kv = raw_kv.clone();
        async move {
            let t = Instant::now();
            let pairs = keys.into_iter().map(|k| (k, value.clone())).collect();
            match kv.batch_put(pairs).await {
                Ok(()) => {
                    let mut o = out.borrow_mut();
                    o.ops += 1;
                    record(o.total.as_mut().expect("histogram"), t.elapsed());
                }
                Err(e) => fail(&out, e.to_string()),
            }
        }
    })
    .await;
    let txn_phase = run_phase(args, Rc::new(RefCell::new(Phase::new())), move |keys, value, out| {
        let txn = txn.clone();
        async move {
            let t = Instant::now();
            loop {
                let attempt = async {
                    let mut tx = txn.begin().await?;
                    for k in &keys {
                        tx.put(k.clone(), value.clone());
                    }
                    tx.commit_timed().await
                };
                match attempt.await {
                    Ok((_, phases)) => {
                        let mut o = out.borrow_mut();
                        o.ops += 1;
                        o.one_pc += u64::from(phases.one_pc);
                        record(o.total.as_mut().expect("histogram"), t.elapsed());
                        record(o.prewrite.as_mut().expect("histogram"), phases.prewrite);
                        if !phases.one_pc {
                            record(
                                o.commit.as_mut().expect("histogram"),
                                phases.commit_primary + phases.commit_secondaries,
                            );
                        }
                        return;
                    }
                    Err(e) if e.is_retryable() => out.borrow_mut().aborts += 1,
                    Err(e) => return fail(&out, e.to_string()),
                }
            }
        }
    })
    .await;
    Ok((raw, txn_phase))
}

fn fail(out: &Rc<RefCell<Phase>>, e: String) {
    let mut o = out.borrow_mut();
    o.errors += 1;
    o.first_error.get_or_insert(e);
}

/// Runs `op` from `--concurrency` tasks for the warm-up and the measured time; what the
/// warm-up measured is dropped.
async fn run_phase<F, Fut>(args: &TxnArgs, out: Rc<RefCell<Phase>>, op: F) -> Phase
where
    F: Fn(Vec<Bytes>, Bytes, Rc<RefCell<Phase>>) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let start = Instant::now();
    let (warm_end, end) = (start + args.warmup, start + args.warmup + args.duration);
    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let (op, out, value, args) = (op.clone(), out.clone(), value.clone(), args.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut i = task.wrapping_mul(7919);
            let mut reset = false;
            while Instant::now() < end {
                if !reset && Instant::now() >= warm_end {
                    reset = true;
                    if task == 0 {
                        *out.borrow_mut() = Phase::new();
                    }
                }
                i = (i + 104_729) % args.records;
                let stride = args.records / args.keys;
                let keys: Vec<Bytes> = (0..args.keys).map(|j| key((i + j * stride) % args.records)).collect();
                op(keys, value.clone(), out.clone()).await;
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    std::mem::take(&mut *out.borrow_mut())
}

fn report(args: &TxnArgs, raw: &Phase, txn: &Phase) {
    let secs = args.duration.as_secs_f64();
    let (raw_rate, txn_rate) = (raw.ops as f64 / secs, txn.ops as f64 / secs);
    let ratio = txn_rate / raw_rate.max(f64::MIN_POSITIVE);
    let (rt, tt, pw, cm) = (summary(&raw.total), summary(&txn.total), summary(&txn.prewrite), summary(&txn.commit));
    let out = json!({
        "keys_per_op": args.keys,
        "regions": args.regions,
        "stores": args.stores,
        "concurrency": args.concurrency,
        "duration_s": secs,
        "raw_ops_per_sec": round1(raw_rate),
        "raw_p50_us": round1(rt.p50_us), "raw_p99_us": round1(rt.p99_us),
        "txn_per_sec": round1(txn_rate),
        "txn_p50_us": round1(tt.p50_us), "txn_p99_us": round1(tt.p99_us),
        "prewrite_p50_us": round1(pw.p50_us), "prewrite_p99_us": round1(pw.p99_us),
        "commit_p50_us": round1(cm.p50_us), "commit_p99_us": round1(cm.p99_us),
        "one_pc": txn.one_pc,
        "one_pc_share": round1(100.0 * txn.one_pc as f64 / txn.ops.max(1) as f64),
        "aborts": txn.aborts,
        "abort_rate": round1(100.0 * txn.aborts as f64 / (txn.ops + txn.aborts).max(1) as f64),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "errors": raw.errors + txn.errors,
        "first_error": raw.first_error.clone().or(txn.first_error.clone()),
    });
    if args.json {
        println!("{out}");
        return;
    }
    println!(
        "{} key(s) per operation over {} region(s), {} store(s), {} in flight, {:.0} s each:",
        args.keys, args.regions, args.stores, args.concurrency, secs
    );
    println!("{:<22} {:>12} {:>10} {:>10}", "", "ops/s", "p50 us", "p99 us");
    println!("{:<22} {:>12.1} {:>10.1} {:>10.1}", "raw batch put", raw_rate, rt.p50_us, rt.p99_us);
    println!("{:<22} {:>12.1} {:>10.1} {:>10.1}", "transaction", txn_rate, tt.p50_us, tt.p99_us);
    println!("{:<22} {:>12} {:>10.1} {:>10.1}", "  prewrite", "", pw.p50_us, pw.p99_us);
    println!("{:<22} {:>12} {:>10.1} {:>10.1}", "  commit", "", cm.p50_us, cm.p99_us);
    println!("ratio (transactions/s ÷ raw batch puts/s): {}", out["ratio"]);
    println!("committed in one phase: {} ({}%)", txn.one_pc, out["one_pc_share"]);
    println!("aborts (retried): {} ({}% of attempts)", txn.aborts, out["abort_rate"]);
    if raw.errors + txn.errors > 0 {
        println!("errors: {} (first: {})", raw.errors + txn.errors, out["first_error"]);
    }
}
