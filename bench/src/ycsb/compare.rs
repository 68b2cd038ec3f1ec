//! `percore-bench compare A.json B.json`: two YCSB results side by side, with the ratios
//! A/B of throughput and of latency percentiles, per operation and in total.

use std::path::PathBuf;

use super::report::{OpReport, PhaseReport, Report};

/// Arguments of `percore-bench compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// The first result (the numerator of the ratios).
    pub a: PathBuf,
    /// The second result.
    pub b: PathBuf,
    /// The phase to compare: run or load.
    #[arg(long, default_value = "run")]
    pub phase: String,
}

/// One operation of both results.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The operation.
    pub op: String,
    /// `(A, B, A/B)` for ops/s, p50, p99 and p99.9.
    pub figures: [(f64, f64, Option<f64>); 4],
}

/// Rows for every operation present in both phases, in A's order (TOTAL last).
pub fn rows(a: &PhaseReport, b: &PhaseReport) -> Vec<Row> {
    let pick = |o: &OpReport| [o.ops_per_sec, o.p50_us, o.p99_us, o.p999_us];
    a.operations
        .iter()
        .filter_map(|oa| {
            let ob = b.op(&oa.op)?;
            let (fa, fb) = (pick(oa), pick(ob));
            let figures = std::array::from_fn(|i| (fa[i], fb[i], (fb[i] > 0.0).then(|| fa[i] / fb[i])));
            Some(Row { op: oa.op.clone(), figures })
        })
        .collect()
}

fn describe(r: &Report) -> String {
    format!(
        "{} — {} at {}, workload {}, {} records, {} thread(s) × {}; {}",
        r.label,
        r.target.kind,
        r.target.address,
        r.workload.name,
        r.workload.recordcount,
        r.threads,
        r.concurrency,
        r.target.cpus
    )
}

fn phase_of<'r>(r: &'r Report, path: &std::path::Path, phase: &str) -> anyhow::Result<&'r PhaseReport> {
    r.phase(phase).ok_or_else(|| anyhow::anyhow!("{} has no {phase} phase", path.display()))
}

/// Prints the comparison.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let (a, b) = (Report::read(&args.a)?, Report::read(&args.b)?);
    let (pa, pb) = (phase_of(&a, &args.a, &args.phase)?, phase_of(&b, &args.b, &args.phase)?);
    println!("A: {}", describe(&a));
    println!("B: {}", describe(&b));
    println!(
        "{:<18} {:>11} {:>11} {:>6}   {:>9} {:>9} {:>6}   {:>9} {:>9} {:>6}   {:>9} {:>9} {:>6}",
        format!("{} phase", args.phase),
        "ops/s A",
        "ops/s B",
        "A/B",
        "p50 A",
        "p50 B",
        "A/B",
        "p99 A",
        "p99 B",
        "A/B",
        "p99.9 A",
        "p99.9 B",
        "A/B"
    );
    for row in rows(pa, pb) {
        let mut line = format!("{:<18}", row.op);
        for (i, (x, y, r)) in row.figures.iter().enumerate() {
            let ratio = r.map_or("-".to_string(), |r| format!("{r:.2}"));
            let width = if i == 0 { 11 } else { 9 };
            line += &format!(" {x:>width$.1} {y:>width$.1} {ratio:>6}  ");
        }
        println!("{}", line.trim_end());
    }
    println!("(latencies in µs; A/B > 1 means A is faster for ops/s, slower for latencies)");
    for op in pa.operations.iter().filter(|o| pb.op(&o.op).is_none()) {
        println!("{} only in A", op.op);
    }
    for op in pb.operations.iter().filter(|o| pa.op(&o.op).is_none()) {
        println!("{} only in B", op.op);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, ops: f64, p99: f64) -> OpReport {
        OpReport {
            op: name.into(),
            count: 1,
            errors: 0,
            ops_per_sec: ops,
            avg_us: 1.0,
            p50_us: p99 / 2.0,
            p95_us: p99,
            p99_us: p99,
            p999_us: p99 * 2.0,
            max_us: p99 * 3.0,
            first_error: None,
            slow: 0,
            percentiles: Vec::new(),
        }
    }

    fn phase(ops: Vec<OpReport>) -> PhaseReport {
        PhaseReport {
            phase: "run".into(),
            duration_s: 1.0,
            count: 1,
            errors: 0,
            warmup_errors: 0,
            slow: 0,
            ops_per_sec: 1.0,
            timed_out: false,
            server_busy_s: None,
            client_busy_s: None,
            client_us_per_op: None,
            server_us_per_op: None,
            operations: ops,
        }
    }

    #[test]
    fn ratios_are_a_over_b_for_shared_operations() {
        let a = phase(vec![op("READ", 1000.0, 400.0), op("SCAN", 5.0, 1.0), op("TOTAL", 1000.0, 400.0)]);
        let b = phase(vec![op("READ", 4000.0, 100.0), op("TOTAL", 4000.0, 0.0)]);
        let r = rows(&a, &b);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].op, "READ");
        assert_eq!(r[0].figures[0], (1000.0, 4000.0, Some(0.25)));
        assert_eq!(r[0].figures[2], (400.0, 100.0, Some(4.0)));
        assert_eq!(r[1].op, "TOTAL");
        assert_eq!(r[1].figures[2], (400.0, 0.0, None), "no ratio against zero");
    }
}
