//! Runs a phase on the client threads: one pinned glommio executor per thread (a
//! `core_shard` pool), each running [`worker::run_thread`]. The main thread waits until
//! every thread has connected, hands them one common start instant, prints progress as
//! the threads report it, and merges what they measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use core_shard::placement::ShardPlacement;
use core_shard::runtime::{PoolConfig, ShardPool};

use super::progress::Progress;
use super::stats::PhaseStats;
use super::worker::{self, Phase, Shared, ThreadOutcome, ThreadPlan, ToMain};

/// How the client side runs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client threads (executors).
    pub threads: usize,
    /// Outstanding operations per thread.
    pub concurrency: usize,
    /// CPUs of the threads (thread `i` on `cpus[i % len]`).
    pub cpus: Vec<usize>,
    /// Total operations per second, if throttled.
    pub target_rate: Option<f64>,
    /// Progress line interval, if any.
    pub progress: Option<Duration>,
    /// Reads the server's busy time (an embedded cluster's shards), so that the report can
    /// say how much server CPU an operation took.
    pub server_busy: Option<BusyProbe>,
}

/// Reads the busy time of the server so far (see `raftstore::StoreShared::busy`).
#[derive(Clone)]
pub struct BusyProbe(pub Arc<dyn Fn() -> Duration + Send + Sync>);

impl std::fmt::Debug for BusyProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusyProbe")
    }
}

/// One phase to run.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec {
    /// Which.
    pub phase: Phase,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time, if timed.
    pub duration: Option<Duration>,
    /// Measured operations over all threads, if counted.
    pub ops: Option<u64>,
    /// Hard bound on the phase.
    pub max_time: Duration,
}

/// What a phase measured, over every thread.
#[derive(Debug)]
pub struct PhaseResult {
    /// Which.
    pub phase: Phase,
    /// Measured operations.
    pub stats: PhaseStats,
    /// Failures during the warm-up.
    pub warmup: PhaseStats,
    /// The measured time: the timed window, or from its start to the last completion.
    pub elapsed: Duration,
    /// The phase was cut by its hard bound.
    pub timed_out: bool,
    /// The server's busy time during the measured window, if it can be read.
    pub server_busy: Option<Duration>,
    /// The client threads' busy time during the measured window (summed), if every thread
    /// measured it.
    pub client_busy: Option<Duration>,
}

/// Runs `spec` with `shared` on the client threads of `client`.
pub fn run_phase(shared: &Arc<Shared>, client: &ClientConfig, spec: PhaseSpec) -> anyhow::Result<PhaseResult> {
    let threads = client.threads;
    let cpus: Vec<usize> = (0..threads).map(|i| client.cpus[i % client.cpus.len()]).collect();
    let placement = ShardPlacement { oversubscribed: threads > client.cpus.len(), cpus };
    let (to_main, from_threads) = flume::unbounded::<(usize, ToMain)>();
    let (go_tx, go_rx): (Vec<_>, Vec<_>) = (0..threads).map(|_| flume::bounded::<Option<Instant>>(1)).unzip();
    let go_rx = Arc::new(go_rx);
    let plans: Vec<ThreadPlan> = (0..threads).map(|i| thread_plan(client, spec, i)).collect();
    let shared = shared.clone();
    let pool = ShardPool::<(), Result<ThreadOutcome, String>>::start(
        PoolConfig::new(&format!("ycsb-{}", spec.phase.name()), placement),
        move |shard| {
            let (shared, plan) = (shared.clone(), plans[shard.id].clone());
            let (to_main, go) = (to_main.clone(), go_rx[shard.id].clone());
            async move { worker::run_thread(shared, plan, to_main, go).await }
        },
    )?;
    let (start, sampler) = coordinate(threads, spec, client, &from_threads, &go_tx);
    let mut total = PhaseResult {
        phase: spec.phase,
        stats: PhaseStats::default(),
        warmup: PhaseStats::default(),
        elapsed: Duration::ZERO,
        timed_out: false,
        server_busy: None,
        client_busy: Some(Duration::ZERO),
    };
    let mut first_err = None;
    let mut last_done: Option<Instant> = None;
    for r in pool.join() {
        match r.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(o) => {
                total.stats.merge(&o.stats);
                total.warmup.merge(&o.warmup);
                total.timed_out |= o.timed_out;
                total.client_busy = total.client_busy.zip(o.busy).map(|(a, b)| a + b);
                last_done = last_done.max(o.last_done);
            }
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    if let Some(e) = first_err {
        anyhow::bail!("{} phase: {e}", spec.phase.name());
    }
    let measured_from = start.unwrap_or_else(Instant::now) + spec.warmup;
    total.elapsed = match spec.duration {
        Some(d) if !total.timed_out => d,
        _ => last_done.map_or(Duration::ZERO, |t| t.saturating_duration_since(measured_from)),
    };
    total.server_busy = match (sampler.and_then(|s| s.join().ok()), &client.server_busy) {
        (Some((from, Some(to))), _) if !total.timed_out => Some(to.saturating_sub(from)),
        (Some((from, None)), Some(probe)) => Some((probe.0)().saturating_sub(from)),
        _ => None,
    };
    Ok(total)
}

fn thread_plan(client: &ClientConfig, spec: PhaseSpec, thread: usize) -> ThreadPlan {
    let n = client.threads as u64;
    let ops = spec.ops.map(|ops| ops / n + u64::from((thread as u64) < ops % n));
    ThreadPlan {
        phase: spec.phase,
        thread,
        concurrency: client.concurrency,
        warmup: spec.warmup,
        duration: spec.duration,
        ops,
        max_time: spec.max_time,
        rate: client.target_rate.map(|r| r / n as f64),
        progress: client.progress,
    }
}

/// The server's busy time when the measured window opens and, for a timed phase, when it
/// closes (an untimed phase closes when its last operation is done).
type Sampler = std::thread::JoinHandle<(Duration, Option<Duration>)>;

fn sample_busy(probe: BusyProbe, spec: PhaseSpec, start: Instant) -> Option<Sampler> {
    let sleep_until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    let window = start + spec.warmup;
    let spawned = std::thread::Builder::new().name("ycsb-busy".into()).spawn(move || {
        sleep_until(window);
        let from = (probe.0)();
        let to = spec.duration.map(|d| {
            sleep_until(window + d);
            (probe.0)()
        });
        (from, to)
    });
    spawned.ok()
}

/// Starts the threads together once all are connected (or aborts them all if one cannot
/// connect), then prints progress until every thread is gone. Returns the start instant
/// and the sampler of the server's busy time.
fn coordinate(
    threads: usize,
    spec: PhaseSpec,
    client: &ClientConfig,
    from_threads: &flume::Receiver<(usize, ToMain)>,
    go: &[flume::Sender<Option<Instant>>],
) -> (Option<Instant>, Option<Sampler>) {
    let mut progress = client.progress.map(|e| Progress::new(spec.phase, threads, e));
    let (mut ready, mut start, mut aborted, mut sampler) = (0, None, false, None);
    while let Ok((_thread, msg)) = from_threads.recv() {
        match msg {
            ToMain::Ready => {
                ready += 1;
                if ready == threads && !aborted {
                    // A little ahead, so that every thread sees it in the future.
                    let at = Instant::now() + Duration::from_millis(20);
                    start = Some(at);
                    for g in go {
                        let _ = g.try_send(Some(at));
                    }
                    sampler = client.server_busy.clone().and_then(|p| sample_busy(p, spec, at));
                }
            }
            ToMain::Failed => {
                aborted = true;
                for g in go {
                    let _ = g.try_send(None);
                }
            }
            ToMain::Progress { tick, warmup, stats } => {
                if let Some(p) = progress.as_mut() {
                    p.add(tick, warmup, &stats);
                }
            }
            ToMain::Done => {
                if let Some(p) = progress.as_mut() {
                    p.thread_done();
                }
            }
        }
    }
    (start, sampler)
}
