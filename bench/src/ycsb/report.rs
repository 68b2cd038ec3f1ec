//! The results: per phase and operation, count, errors, ops/s and latency percentiles.
//! Printed as a table, written as JSON (`--json`, the input of `plot` and `compare`), and as
//! HdrHistogram percentile-distribution files (`--hdr`, the text format of HdrHistogram's
//! `outputPercentileDistribution`, in microseconds, which HdrHistogram's plotter reads).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::runner::PhaseResult;
use super::stats::OpStats;
use super::workload::Workload;
use crate::latency::{round1, Summary};

/// Where the workload ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `embedded`, `pd` or `redis`.
    pub kind: String,
    /// PD's or Redis's address.
    pub address: String,
    /// Stores of an embedded cluster.
    pub stores: Option<usize>,
    /// Shards per store of an embedded cluster.
    pub shards: Option<usize>,
    /// CPUs of an embedded cluster's shards (and PD).
    pub server_cpus: Option<Vec<usize>>,
    /// CPUs of the client threads.
    pub client_cpus: Vec<usize>,
    /// Whether client and server share CPUs (embedded only).
    pub cpus_shared: Option<bool>,
    /// The CPU arrangement in words.
    pub cpus: String,
}

/// One operation kind's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    /// `READ`, `UPDATE`, `INSERT`, `SCAN`, `READ-MODIFY-WRITE` or `TOTAL`.
    pub op: String,
    /// Successful operations measured.
    pub count: u64,
    /// Failed operations.
    pub errors: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Mean latency.
    pub avg_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Operations (successful or failed) slower than 1 s.
    #[serde(default)]
    pub slow: u64,
    /// `[quantile, latency µs]` points of the distribution (for plots).
    pub percentiles: Vec<[f64; 2]>,
}

/// One phase's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// `load` or `run`.
    pub phase: String,
    /// Measured time.
    pub duration_s: f64,
    /// Successful operations.
    pub count: u64,
    /// Failed operations (measured window).
    pub errors: u64,
    /// Failed operations during the warm-up.
    pub warmup_errors: u64,
    /// Measured operations (successful or failed) slower than 1 s.
    #[serde(default)]
    pub slow: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// The phase hit its time bound before it was done.
    pub timed_out: bool,
    /// The server's busy time in the measured window (an embedded cluster's shards: tasks
    /// and I/O polling, not idle spinning), in seconds.
    #[serde(default)]
    pub server_busy_s: Option<f64>,
    /// That busy time per successful operation: the server CPU an operation costs.
    #[serde(default)]
    pub server_us_per_op: Option<f64>,
    /// The client threads' busy time in the measured window (tasks, not idle spinning), in
    /// seconds: near `duration_s × threads`, the load generator is the limit.
    #[serde(default)]
    pub client_busy_s: Option<f64>,
    /// That busy time per successful operation: the client CPU an operation costs.
    #[serde(default)]
    pub client_us_per_op: Option<f64>,
    /// Per kind, then `TOTAL`.
    pub operations: Vec<OpReport>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always `ycsb`.
    pub bench: String,
    /// A name for plots and comparisons.
    pub label: String,
    /// Where it ran.
    pub target: TargetInfo,
    /// The workload.
    pub workload: Workload,
    /// Client threads.
    pub threads: usize,
    /// Outstanding operations per thread.
    pub concurrency: usize,
    /// Throttle, if any.
    pub target_ops_per_sec: Option<f64>,
    /// Warm-up of the run phase.
    pub warmup_s: f64,
    /// The phases that ran.
    pub phases: Vec<PhaseReport>,
}

impl Report {
    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.phase == name)
    }

    /// Reads a JSON report.
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a percore-bench ycsb JSON report", path.display()))
    }

    /// Writes the JSON report to `path` (`-`: stdout).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        if path == Path::new("-") {
            println!("{text}");
            return Ok(());
        }
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
    }

    /// Failed operations of every phase, warm-up included.
    pub fn errors(&self) -> u64 {
        self.phases.iter().map(|p| p.errors + p.warmup_errors).sum()
    }
}

impl PhaseReport {
    /// Figures of `result`.
    pub fn of(result: &PhaseResult) -> Self {
        let secs = result.elapsed.as_secs_f64();
        let mut operations: Vec<OpReport> =
            result.stats.kinds().map(|(kind, s)| op_report(kind.name(), s, secs)).collect();
        let mut total = OpStats::default();
        for s in &result.stats.ops {
            let _ = total.hist.add(&s.hist);
            total.errors += s.errors;
            total.slow += s.slow;
        }
        operations.push(op_report("TOTAL", &total, secs));
        PhaseReport {
            phase: result.phase.name().into(),
            duration_s: round3(secs),
            count: result.stats.count(),
            errors: result.stats.errors(),
            warmup_errors: result.warmup.errors(),
            slow: result.stats.slow(),
            ops_per_sec: round1(per_sec(result.stats.count(), secs)),
            timed_out: result.timed_out,
            server_busy_s: result.server_busy.map(|b| round3(b.as_secs_f64())),
            server_us_per_op: result
                .server_busy
                .filter(|_| result.stats.count() > 0)
                .map(|b| round1(b.as_secs_f64() * 1e6 / result.stats.count() as f64)),
            client_busy_s: result.client_busy.map(|b| round3(b.as_secs_f64())),
            client_us_per_op: result
                .client_busy
                .filter(|_| result.stats.count() > 0)
                .map(|b| round1(b.as_secs_f64() * 1e6 / result.stats.count() as f64)),
            operations,
        }
    }

    /// The operation named `name`.
    pub fn op(&self, name: &str) -> Option<&OpReport> {
        self.operations.iter().find(|o| o.op == name)
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Twelve decimals, as HdrHistogram prints quantiles (and JSON keeps them short).
fn round_quantile(q: f64) -> f64 {
    (q * 1e12).round() / 1e12
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn op_report(name: &str, s: &OpStats, secs: f64) -> OpReport {
    let sum = Summary::of(&s.hist);
    let percentiles = if s.hist.is_empty() {
        Vec::new()
    } else {
        s.hist
            .iter_quantiles(5)
            .map(|v| [round_quantile(v.quantile_iterated_to()), round1(v.value_iterated_to() as f64 / 1000.0)])
            .collect()
    };
    OpReport {
        op: name.into(),
        count: sum.count,
        errors: s.errors,
        ops_per_sec: round1(per_sec(sum.count, secs)),
        avg_us: round1(sum.avg_us),
        p50_us: round1(sum.p50_us),
        p95_us: round1(sum.p95_us),
        p99_us: round1(sum.p99_us),
        p999_us: round1(sum.p999_us),
        max_us: round1(sum.max_us),
        first_error: s.first_error.clone(),
        slow: s.slow,
        percentiles,
    }
}

/// Prints the table of every phase, then the first error of each failing operation.
pub fn print_table(report: &Report) {
    println!(
        "{:<5} {:<18} {:>10} {:>7} {:>5} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "phase",
        "operation",
        "count",
        "errors",
        ">1s",
        "ops/s",
        "avg us",
        "p50 us",
        "p95 us",
        "p99 us",
        "p99.9 us",
        "max us"
    );
    for p in &report.phases {
        for o in &p.operations {
            println!(
                "{:<5} {:<18} {:>10} {:>7} {:>5} {:>11.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                p.phase,
                o.op,
                o.count,
                o.errors,
                o.slow,
                o.ops_per_sec,
                o.avg_us,
                o.p50_us,
                o.p95_us,
                o.p99_us,
                o.p999_us,
                o.max_us
            );
        }
    }
    for p in &report.phases {
        println!(
            "{} phase: {:.3} s measured, {} ops/s, {} operation(s) slower than 1 s",
            p.phase, p.duration_s, p.ops_per_sec, p.slow
        );
        if let (Some(busy), Some(per_op)) = (p.server_busy_s, p.server_us_per_op) {
            println!(
                "{} phase: server busy {:.3} s of {:.3} s ({:.0}%), {} us of server CPU per operation",
                p.phase,
                busy,
                p.duration_s,
                100.0 * busy / p.duration_s.max(1e-9),
                per_op
            );
        }
        if let (Some(busy), Some(per_op)) = (p.client_busy_s, p.client_us_per_op) {
            println!(
                "{} phase: client busy {:.3} s of {:.3} s per thread × threads, {} us of client CPU per operation",
                p.phase, busy, p.duration_s, per_op
            );
        }
        if p.timed_out {
            println!("{} phase: stopped by --max-time before it was done", p.phase);
        }
        if p.warmup_errors > 0 {
            println!("{} phase: {} operations failed during the warm-up", p.phase, p.warmup_errors);
        }
        for o in p.operations.iter().filter(|o| o.errors > 0 && o.op != "TOTAL") {
            let first = o.first_error.as_deref().unwrap_or("?");
            println!("{} {}: {} failed; first: {first}", p.phase, o.op, o.errors);
        }
    }
}

/// Writes `<prefix>-<phase>-<op>.hgrm` for every operation of `result`; returns the paths.
pub fn write_hgrm_files(prefix: &Path, result: &PhaseResult) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (kind, s) in result.stats.kinds().filter(|(_, s)| !s.hist.is_empty()) {
        let name = format!(
            "{}-{}-{}.hgrm",
            prefix.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "ycsb".into()),
            result.phase.name(),
            kind.name().to_ascii_lowercase()
        );
        let path = prefix.with_file_name(name);
        let mut f = std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        f.write_all(percentile_distribution(&s.hist).as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// HdrHistogram's percentile distribution text of a nanosecond histogram, in microseconds,
/// five steps per halving of the distance to 100 %.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let us = |ns: u64| ns as f64 / 1000.0;
    let mut out = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            out +=
                &format!("{:>12.3} {:>2.12} {:>10} {:>14.2}\n", us(v.value_iterated_to()), q, total, 1.0 / (1.0 - q));
        } else {
            out += &format!("{:>12.3} {:>2.12} {:>10}\n", us(v.value_iterated_to()), q, total);
        }
    }
    out += &format!("#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n", h.mean() / 1000.0, h.stdev() / 1000.0);
    out += &format!("#[Max     = {:>12.3}, Total count    = {:>12}]\n", us(h.max()), h.len());
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    out += &format!("#[Buckets = {:>12}, SubBuckets     = {:>12}]\n", h.buckets(), sub_buckets);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ycsb::ops::OpKind;
    use crate::ycsb::stats::PhaseStats;
    use crate::ycsb::worker::Phase;

    fn result() -> PhaseResult {
        let mut stats = PhaseStats::default();
        for i in 1..=1000 {
            stats.ok(OpKind::Read, Duration::from_micros(i));
        }
        for _ in 0..500 {
            stats.ok(OpKind::Update, Duration::from_micros(2000));
        }
        stats.failed(OpKind::Update, "deadline exceeded", Duration::from_secs(3));
        PhaseResult {
            phase: Phase::Run,
            stats,
            warmup: PhaseStats::default(),
            elapsed: Duration::from_secs(2),
            timed_out: false,
            server_busy: Some(Duration::from_millis(600)),
            client_busy: Some(Duration::from_millis(300)),
        }
    }

    #[test]
    fn phase_figures_per_operation_and_total() {
        let p = PhaseReport::of(&result());
        let names: Vec<&str> = p.operations.iter().map(|o| o.op.as_str()).collect();
        assert_eq!(names, ["READ", "UPDATE", "TOTAL"]);
        let read = p.op("READ").unwrap();
        assert_eq!((read.count, read.errors, read.ops_per_sec), (1000, 0, 500.0));
        assert!((read.p50_us - 500.0).abs() < 1.0 && (read.p99_us - 990.0).abs() < 1.0, "{read:?}");
        let update = p.op("UPDATE").unwrap();
        assert_eq!((update.errors, update.first_error.as_deref()), (1, Some("deadline exceeded")));
        let total = p.op("TOTAL").unwrap();
        assert_eq!((total.count, total.errors, total.ops_per_sec, total.slow), (1500, 1, 750.0, 1));
        assert_eq!((p.count, p.errors, p.ops_per_sec, p.slow), (1500, 1, 750.0, 1));
        assert_eq!((read.slow, update.slow), (0, 1));
        assert_eq!((p.server_busy_s, p.server_us_per_op), (Some(0.6), Some(400.0)));
        assert_eq!((p.client_busy_s, p.client_us_per_op), (Some(0.3), Some(200.0)));
        assert!(read.percentiles.windows(2).all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]));
    }

    #[test]
    fn json_round_trips() {
        let report = Report {
            bench: "ycsb".into(),
            label: "x".into(),
            target: TargetInfo {
                kind: "redis".into(),
                address: "127.0.0.1:6379".into(),
                stores: None,
                shards: None,
                server_cpus: None,
                client_cpus: vec![1],
                cpus_shared: None,
                cpus: "client on cpu 1".into(),
            },
            workload: Workload::default(),
            threads: 1,
            concurrency: 64,
            target_ops_per_sec: None,
            warmup_s: 2.0,
            phases: vec![PhaseReport::of(&result())],
        };
        let text = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.phases[0].op("READ"), report.phases[0].op("READ"));
        assert_eq!(back.errors(), 1);
    }

    #[test]
    fn percentile_distribution_has_hdrhistograms_layout() {
        let r = result();
        let text = percentile_distribution(&r.stats.ops[OpKind::Read.index()].hist);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines.next(), Some(""));
        let first: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!((first[0], first[1], first[2], first[3]), ("1.000", "0.000000000000", "1", "1.00"));
        assert!(text.contains("#[Max     =     1000.447, Total count    =         1000]"), "{text}");
        let last_data = text.lines().rfind(|l| !l.starts_with('#') && !l.is_empty()).unwrap();
        assert!(last_data.contains("1.000000000000") && last_data.trim_end().ends_with("1000"), "{last_data}");
    }
}
