//! The arguments of `percore-bench ycsb` and their checks.

use std::path::PathBuf;
use std::time::Duration;

use core_shard::placement::CpuList;

use super::properties::{Property, WorkloadError};
use super::workload::Workload;
use crate::args::parse_duration;

/// Which phases to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phases {
    /// Insert the records only.
    Load,
    /// The operation mix only (the records must be there already).
    Run,
    /// Load, then run.
    Both,
}

/// Arguments of `percore-bench ycsb`.
#[derive(clap::Args, Debug, Clone)]
pub struct YcsbArgs {
    /// YCSB core workload a, b, c, d, e or f, or a YCSB workload properties file.
    #[arg(long, default_value = "a")]
    pub workload: String,
    /// Sets a workload property, e.g. `-p requestdistribution=uniform` (repeatable; applied
    /// after the workload file, before --records/--operations).
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE", value_parser = Property::parse_assignment)]
    pub properties: Vec<Property>,
    /// Records to load (recordcount) [default: the workload's, 1000 for a–f].
    #[arg(long)]
    pub records: Option<u64>,
    /// Operations of the run phase (operationcount) [default: the workload's, 1000 for a–f;
    /// with --duration: no limit].
    #[arg(long)]
    pub operations: Option<u64>,
    /// Phases to run.
    #[arg(long, value_enum, default_value = "both")]
    pub phase: Phases,
    /// Client threads, each a glommio executor pinned to its own CPU.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Outstanding operations per client thread.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Throttle to this many operations per second in total [default: as fast as possible].
    #[arg(long)]
    pub target: Option<f64>,
    /// Measured run time; the run stops at the duration (or at --operations, if given).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Run-phase warm-up: operations run but are not measured (`0`: none).
    #[arg(long, default_value = "2s", value_parser = parse_warmup)]
    pub warmup: Duration,
    /// Hard time bound of each phase; a phase cut by it fails the run.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub max_time: Duration,
    /// Progress line interval (`0` or `off`: none).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub progress: Interval,
    /// Drive a running Percore cluster through its PD at this address.
    #[arg(long, conflicts_with = "redis")]
    pub pd: Option<String>,
    /// Drive a Redis-protocol server at HOST:PORT.
    #[arg(long)]
    pub redis: Option<String>,
    /// Embedded cluster: stores (every region is replicated on all of them).
    #[arg(long, default_value_t = 1)]
    pub stores: usize,
    /// Embedded cluster: shards per store [default: one per server CPU].
    #[arg(long)]
    pub shards: Option<usize>,
    /// Embedded cluster: CPUs of the shards and PD, e.g. `0-3` [default: the CPUs the
    /// client threads do not use].
    #[arg(long)]
    pub cpus: Option<CpuList>,
    /// CPUs of the client threads [default: the last --threads online CPUs].
    #[arg(long)]
    pub client_cpus: Option<CpuList>,
    /// Embedded cluster: parent of its temporary data directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Embedded cluster: a store configuration file (percore-server's TOML) every store
    /// starts from; its address, data directory, shards and CPUs are the bench's.
    #[arg(long)]
    pub store_config: Option<PathBuf>,
    /// Writes the results as JSON to this file (`-`: stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Writes HdrHistogram percentile distributions to `<PREFIX>-<phase>-<op>.hgrm`.
    #[arg(long, value_name = "PREFIX")]
    pub hdr: Option<PathBuf>,
    /// Name of this run in the JSON, plots and comparisons [default: target and workload].
    #[arg(long)]
    pub label: Option<String>,
}

/// An optional interval (`0`/`off` = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Option<Duration>);

fn parse_warmup(s: &str) -> Result<Duration, String> {
    match s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => parse_duration(s),
    }
}

fn parse_interval(s: &str) -> Result<Interval, String> {
    match s.trim() {
        "0" | "off" | "none" => Ok(Interval(None)),
        s => parse_duration(s).map(|d| Interval(Some(d))),
    }
}

impl YcsbArgs {
    /// Checks the arguments that do not depend on the workload.
    pub fn check(&self) -> Result<(), String> {
        if self.threads == 0 || self.threads > 256 {
            return Err(format!("--threads must be between 1 and 256, not {}", self.threads));
        }
        if self.concurrency == 0 || self.concurrency > 100_000 {
            return Err(format!("--concurrency must be between 1 and 100000, not {}", self.concurrency));
        }
        if let Some(t) = self.target {
            if !t.is_finite() || t <= 0.0 {
                return Err(format!("--target must be a positive number of operations per second, not {t}"));
            }
        }
        if self.stores == 0 || self.stores > 7 {
            return Err(format!("--stores must be between 1 and 7, not {}", self.stores));
        }
        if self.shards == Some(0) {
            return Err("--shards must be at least 1".into());
        }
        if self.duration.is_some_and(|d| d > self.max_time) {
            return Err("--duration must not exceed --max-time".into());
        }
        if !self.is_embedded() && self.store_config.is_some() {
            return Err("--store-config configures the embedded cluster: not with --pd or --redis".into());
        }
        if self.is_embedded() && self.phase == Phases::Run {
            return Err("--phase run needs --pd or --redis: an embedded cluster starts empty".into());
        }
        Ok(())
    }

    /// Whether the workload runs against an embedded cluster.
    pub fn is_embedded(&self) -> bool {
        self.pd.is_none() && self.redis.is_none()
    }

    /// The workload: `--workload`, then `-p`, then `--records` and `--operations`.
    pub fn workload(&self) -> Result<Workload, WorkloadError> {
        let mut overrides = self.properties.clone();
        if let Some(n) = self.records {
            overrides.push(Property::new("recordcount", n, "--records"));
        }
        if let Some(n) = self.operations {
            overrides.push(Property::new("operationcount", n, "--operations"));
        }
        Workload::load(&self.workload, &overrides)
    }

    /// Measured operations of the run phase: `--operations` with `--duration`, else the
    /// workload's operationcount.
    pub fn run_ops(&self, w: &Workload) -> Result<Option<u64>, String> {
        let ops = match self.duration {
            Some(_) => self.operations,
            None => Some(w.operationcount),
        };
        if ops == Some(0) {
            return Err("the run phase has 0 operations: set --operations or --duration".into());
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: YcsbArgs,
    }

    fn parse(line: &str) -> Result<YcsbArgs, String> {
        let args =
            Cli::try_parse_from(std::iter::once("x").chain(line.split_whitespace())).map_err(|e| e.to_string())?.args;
        args.check()?;
        Ok(args)
    }

    #[test]
    fn flags_override_the_workload_in_order() {
        let a = parse("--workload b -p recordcount=50 -p operationcount=9 --records 70").unwrap();
        let w = a.workload().unwrap();
        assert_eq!((w.recordcount, w.operationcount, w.readproportion), (70, 9, 0.95));
        assert_eq!(a.run_ops(&w), Ok(Some(9)));
        let a = parse("--duration 5s").unwrap();
        assert_eq!(a.run_ops(&a.workload().unwrap()), Ok(None));
        let a = parse("--duration 5s --operations 100").unwrap();
        assert_eq!(a.run_ops(&a.workload().unwrap()), Ok(Some(100)));
        let a = parse("--operations 0").unwrap();
        assert!(a.run_ops(&a.workload().unwrap()).is_err());
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            "--threads 0",
            "--concurrency 0",
            "--target -5",
            "--stores 0",
            "--shards 0",
            "--phase run",
            "--pd 127.0.0.1:2379 --redis 127.0.0.1:6379",
            "--duration 0s",
            "--duration 20m",
            "-p nonsense",
            "--redis 127.0.0.1:6379 --store-config store.toml",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(parse("--phase run --redis 127.0.0.1:6379").is_ok());
        assert_eq!(parse("--progress off").unwrap().progress, Interval(None));
        assert_eq!(parse("--warmup 0s").unwrap().warmup, Duration::ZERO);
        assert_eq!(parse("--warmup 0").unwrap().warmup, Duration::ZERO);
        assert!(parse("--warmup -1s").is_err());
        assert_eq!(parse("--progress 2s").unwrap().progress, Interval(Some(Duration::from_secs(2))));
    }
}
