//! `percore-bench log`: the raft log engine under closed-loop appenders.
//!
//! Every shard opens its own log (`<dir>/shard-<i>/raftlog`) and runs `--regions`
//! appenders; each appends one entry of `--entry-size` bytes (with a hard state, as raft
//! does), waits until it is durable, and appends the next. Group commit turns the appends
//! of one loop turn into one write and one fdatasync, so throughput should approach
//! `regions × fsyncs/s`.
//!
//! The baseline is measured by the same command on the same directory: a plain loop of
//! `write(4 KiB)` at the end of a file + `fdatasync`, half before and half after the main
//! run (the disk of a shared machine drifts). `ratio = appends_per_sec /
//! baseline_fsyncs_per_sec`.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use core_shard::log::{Entry, HardState, LogConfig, LogEngine, LogStats};
use core_shard::placement::{format_cpus, resolve_online, CpuList, PlacementPolicy};
use core_shard::runtime::{PoolConfig, ShardPool};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::args::parse_duration;
use crate::latency::{new_histogram, record, round1, Summary};

/// Arguments of `percore-bench log`.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Regions (closed-loop appenders) per shard.
    #[arg(long, default_value_t = 64)]
    pub regions: u64,
    /// Bytes of each entry's payload.
    #[arg(long, default_value_t = 128)]
    pub entry_size: usize,
    /// Measured run time (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Total baseline time, half before and half after the main run [default: duration / 2].
    #[arg(long, value_parser = parse_duration)]
    pub baseline_duration: Option<Duration>,
    /// Shards, each with its own log [default: 1 — one shard's log].
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// CPUs for the shards, e.g. `0-3,6` [default: all online CPUs, by --placement].
    #[arg(long)]
    pub cpus: Option<CpuList>,
    /// How shards are laid over CPUs when --cpus leaves a choice: pack or spread.
    #[arg(long, default_value = "spread")]
    pub placement: PlacementPolicy,
    /// Directory for the logs and the baseline file [default: a temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Segment size in MiB.
    #[arg(long, default_value_t = 64)]
    pub segment_mib: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What one shard measured.
struct ShardResult {
    shard: usize,
    cpu: usize,
    appends: u64,
    stats: LogStats,
    hist: Histogram<u64>,
}

/// Runs the benchmark and prints the report.
pub fn run(args: LogArgs) -> anyhow::Result<()> {
    if args.regions == 0 {
        anyhow::bail!("--regions must be at least 1");
    }
    let placement = resolve_online(Some(args.shards), args.cpus.as_ref(), args.placement)?;
    let (root, _tmp) = match &args.dir {
        Some(d) => {
            let root = d.join(format!("percore-bench-log-{}", std::process::id()));
            (root, None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("percore-bench-log-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let base_total = args.baseline_duration.unwrap_or(args.duration / 2).max(Duration::from_millis(500));

    if !args.json {
        eprintln!(
            "percore-bench log: {} shard(s) on cpus {}, {} regions/shard, {} B entries, {:?} (+{:?} warm-up), dir {}\n",
            placement.shards(),
            format_cpus(&placement.cpus),
            args.regions,
            args.entry_size,
            args.duration,
            args.warmup,
            root.display()
        );
    }
    let mut base_hist = new_histogram();
    let mut base_time = Duration::ZERO;
    let (n, t) = baseline(&root, base_total / 2, &mut base_hist)?;
    base_time += t;
    let mut base_count = n;

    let results = run_shards(&args, placement.clone(), &root)?;

    let (n, t) = baseline(&root, base_total / 2, &mut base_hist)?;
    base_time += t;
    base_count += n;
    if args.dir.is_some() {
        let _ = std::fs::remove_dir_all(&root);
    }

    let secs = args.duration.as_secs_f64();
    let mut total_hist = new_histogram();
    let mut shard_json = Vec::new();
    let (mut appends, mut fsyncs, mut entry_bytes, mut written) = (0u64, 0u64, 0u64, 0u64);
    let (mut fsync_nanos, mut write_nanos, mut batches) = (0u64, 0u64, 0u64);
    for r in &results {
        total_hist.add(&r.hist).ok();
        appends += r.appends;
        fsyncs += r.stats.fsyncs;
        entry_bytes += r.stats.entry_bytes;
        written += r.stats.bytes_written;
        fsync_nanos += r.stats.fsync_nanos;
        write_nanos += r.stats.write_nanos;
        batches += r.stats.batches;
        shard_json.push(shard_figures(r, secs));
    }
    let s = Summary::of(&total_hist);
    let base = Summary::of(&base_hist);
    let appends_per_sec = appends as f64 / secs;
    let baseline_fsyncs_per_sec = base_count as f64 / base_time.as_secs_f64();
    let out = json!({
        "bench": "log",
        "shards": results.len(),
        "cpus": placement.cpus,
        "regions_per_shard": args.regions,
        "entry_size": args.entry_size,
        "duration_s": secs,
        "appends_per_sec": round1(appends_per_sec),
        "mb_per_sec": round1(entry_bytes as f64 / secs / 1e6),
        "disk_mb_per_sec": round1(written as f64 / secs / 1e6),
        "fsyncs_per_sec": round1(fsyncs as f64 / secs),
        "entries_per_fsync": round1(if fsyncs > 0 { appends as f64 / fsyncs as f64 } else { 0.0 }),
        "p50_us": round1(s.p50_us),
        "p99_us": round1(s.p99_us),
        "p999_us": round1(s.p999_us),
        "max_us": round1(s.max_us),
        "avg_fsync_us": round1(fsync_nanos as f64 / fsyncs.max(1) as f64 / 1000.0),
        "avg_write_us": round1(write_nanos as f64 / batches.max(1) as f64 / 1000.0),
        "baseline_fsyncs_per_sec": round1(baseline_fsyncs_per_sec),
        "baseline_p50_us": round1(base.p50_us),
        "baseline_p99_us": round1(base.p99_us),
        "ratio": round1(appends_per_sec / baseline_fsyncs_per_sec.max(f64::MIN_POSITIVE)),
        "per_shard": shard_json,
    });
    if args.json {
        println!("{out}");
    } else {
        print_table(&out);
    }
    Ok(())
}

fn shard_figures(r: &ShardResult, secs: f64) -> serde_json::Value {
    let s = Summary::of(&r.hist);
    json!({
        "shard": r.shard,
        "cpu": r.cpu,
        "appends_per_sec": round1(r.appends as f64 / secs),
        "mb_per_sec": round1(r.stats.entry_bytes as f64 / secs / 1e6),
        "fsyncs_per_sec": round1(r.stats.fsyncs as f64 / secs),
        "entries_per_fsync": round1(if r.stats.fsyncs > 0 { r.appends as f64 / r.stats.fsyncs as f64 } else { 0.0 }),
        "p50_us": round1(s.p50_us),
        "p99_us": round1(s.p99_us),
        "p999_us": round1(s.p999_us),
    })
}

fn print_table(out: &serde_json::Value) {
    println!(
        "{:<7} {:>5} {:>12} {:>8} {:>10} {:>13} {:>9} {:>9} {:>10}",
        "shard", "cpu", "appends/s", "MB/s", "fsyncs/s", "entries/fsync", "p50 us", "p99 us", "p99.9 us"
    );
    let row = |name: String, cpu: String, v: &serde_json::Value| {
        println!(
            "{:<7} {:>5} {:>12} {:>8} {:>10} {:>13} {:>9} {:>9} {:>10}",
            name,
            cpu,
            v["appends_per_sec"],
            v["mb_per_sec"],
            v["fsyncs_per_sec"],
            v["entries_per_fsync"],
            v["p50_us"],
            v["p99_us"],
            v["p999_us"]
        );
    };
    if let Some(shards) = out["per_shard"].as_array() {
        for s in shards {
            row(s["shard"].to_string(), s["cpu"].to_string(), s);
        }
    }
    row("total".into(), "".into(), out);
    println!(
        "baseline (4 KiB append + fdatasync, same dir): {} fsyncs/s, p50 {} us, p99 {} us",
        out["baseline_fsyncs_per_sec"], out["baseline_p50_us"], out["baseline_p99_us"]
    );
    println!("log fdatasync avg {} us, batch write avg {} us", out["avg_fsync_us"], out["avg_write_us"]);
    println!("ratio (appends/s ÷ baseline fsyncs/s): {}", out["ratio"]);
}

/// A plain `write(4 KiB)` + `fdatasync` loop appending to one file.
fn baseline(dir: &Path, dur: Duration, hist: &mut Histogram<u64>) -> anyhow::Result<(u64, Duration)> {
    let path = dir.join("baseline.dat");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let block = [0x5au8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        record(hist, t.elapsed());
        n += 1;
    }
    let took = start.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok((n, took))
}

fn run_shards(
    args: &LogArgs,
    placement: core_shard::placement::ShardPlacement,
    root: &Path,
) -> anyhow::Result<Vec<ShardResult>> {
    let config = LogConfig { segment_size: args.segment_mib << 20, ..LogConfig::default() };
    config.validate().map_err(anyhow::Error::msg)?;
    let args = args.clone();
    let root = root.to_path_buf();
    let pool =
        ShardPool::<(), Result<ShardResult, String>>::start(PoolConfig::new("bench", placement), move |shard| {
            let args = args.clone();
            let config = config.clone();
            let dir = root.join(format!("shard-{}", shard.id)).join("raftlog");
            async move {
                let (log, _) = LogEngine::open(&dir, config, shard.queues.into()).await.map_err(|e| e.to_string())?;
                let result = drive_shard(&log, &args, shard.queues.latency).await;
                log.close().await.map_err(|e| e.to_string())?;
                let (appends, stats, hist) = result?;
                Ok(ShardResult { shard: shard.id, cpu: shard.cpu, appends, stats, hist })
            }
        })?;
    let mut out = Vec::new();
    for r in pool.join() {
        out.push(r?.map_err(anyhow::Error::msg)?);
    }
    Ok(out)
}

type DriveResult = Result<(u64, LogStats, Histogram<u64>), String>;

/// Runs the appenders of one shard; returns appends completed in the measured window, the
/// engine counters over that window, and the latency histogram.
async fn drive_shard(log: &LogEngine, args: &LogArgs, queue: glommio::TaskQueueHandle) -> DriveResult {
    let hist = Rc::new(RefCell::new(new_histogram()));
    let start = Instant::now();
    let warm_end = start + args.warmup;
    let end = warm_end + args.duration;
    let payload = Bytes::from(vec![0xabu8; args.entry_size]);
    let failed: Rc<Cell<Option<String>>> = Rc::new(Cell::new(None));
    let mut tasks = Vec::new();
    for region in 1..=args.regions {
        let (log, hist, payload, failed) = (log.clone(), hist.clone(), payload.clone(), failed.clone());
        let task = glommio::spawn_local_into(
            async move {
                match appender(&log, region, payload, &hist, warm_end, end).await {
                    Ok(n) => n,
                    Err(e) => {
                        failed.set(Some(e.to_string()));
                        0
                    }
                }
            },
            queue,
        )
        .map_err(|e| e.to_string())?;
        tasks.push(task);
    }
    // Engine counters at the window's edges, and a purge every half second.
    let sampler = {
        let log = log.clone();
        glommio::spawn_local(async move {
            sleep_until(warm_end).await;
            let before = log.stats();
            while Instant::now() + Duration::from_millis(500) < end {
                glommio::timer::sleep(Duration::from_millis(500)).await;
                if let Err(e) = log.purge().await {
                    tracing::warn!("purge: {e}");
                }
            }
            sleep_until(end).await;
            let after = log.stats();
            (before, after)
        })
    };
    let mut appends = 0;
    for t in tasks {
        appends += t.await;
    }
    let (before, after) = sampler.await;
    if let Some(e) = failed.take() {
        return Err(e);
    }
    let stats = LogStats {
        appends: after.appends - before.appends,
        entries: after.entries - before.entries,
        entry_bytes: after.entry_bytes - before.entry_bytes,
        batches: after.batches - before.batches,
        bytes_written: after.bytes_written - before.bytes_written,
        fsyncs: after.fsyncs - before.fsyncs,
        fsync_nanos: after.fsync_nanos - before.fsync_nanos,
        write_nanos: after.write_nanos - before.write_nanos,
        segments_purged: after.segments_purged - before.segments_purged,
        disk_reads: after.disk_reads - before.disk_reads,
    };
    let hist = hist.borrow().clone();
    Ok((appends, stats, hist))
}

async fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        glommio::timer::sleep(t - now).await;
    }
}

/// One region: append, wait until durable, repeat; compact now and then like raft log GC.
async fn appender(
    log: &LogEngine,
    region: u64,
    payload: Bytes,
    hist: &RefCell<Histogram<u64>>,
    warm_end: Instant,
    end: Instant,
) -> Result<u64, core_shard::log::LogError> {
    let mut index = 1u64;
    let mut done = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return Ok(done);
        }
        let entry = Entry { index, term: 1, data: payload.clone() };
        let hs = HardState { term: 1, vote: 1, commit: index - 1 };
        log.append(region, vec![entry], Some(hs))?.await?;
        let t1 = Instant::now();
        if t0 >= warm_end && t1 <= end {
            record(&mut hist.borrow_mut(), t1 - t0);
            done += 1;
        }
        index += 1;
        if index.is_multiple_of(1024) {
            // Log GC: becomes durable with the next batch; nothing waits for it.
            drop(log.compact(region, index - 256)?);
        }
    }
}
