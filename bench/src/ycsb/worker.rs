//! One client thread's share of a phase: `concurrency` closed-loop tasks on the thread's
//! executor, sharing one connection (Percore's routing client or one pipelined Redis
//! connection), one operation generator and one throttle.
//!
//! Timeline, on the instant `start` that the runner gives every thread at once:
//! `[start, start + warmup)` runs operations that are not measured (run phase only); then
//! operations are measured until this thread's operation budget is spent (load: until the
//! shared load counter passes the last record) or the measured `duration` ends. Latency is
//! measured from the moment an operation is sent, after any throttling wait; an operation
//! that completes after the end of a timed window is not counted (its failure is).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use core_shard::notify::Notify;

use super::counter::AcknowledgedCounter;
use super::ops::{Op, OpGenerator};
use super::spec::TargetSpec;
use super::stats::PhaseStats;
use super::target::Target;
use super::workload::Workload;

/// The two YCSB phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Insert every record once.
    Load,
    /// The operation mix.
    Run,
}

impl Phase {
    /// `load` or `run`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::Run => "run",
        }
    }
}

/// State every client thread shares (read-mostly; only counters are written).
pub struct Shared {
    /// The workload.
    pub workload: Workload,
    /// Where to connect.
    pub target: TargetSpec,
    /// Run-phase insert ordinals and the acknowledged limit.
    pub inserts: Arc<AcknowledgedCounter>,
    /// The next record to load.
    pub load_next: AtomicU64,
}

impl Shared {
    /// Shared state for `workload` against `target`.
    pub fn new(workload: Workload, target: TargetSpec) -> Self {
        let inserts = Arc::new(AcknowledgedCounter::new(workload.recordcount));
        let load_next = AtomicU64::new(workload.insertstart);
        Shared { workload, target, inserts, load_next }
    }
}

/// What one thread does in a phase.
#[derive(Debug, Clone)]
pub struct ThreadPlan {
    /// Which phase.
    pub phase: Phase,
    /// Thread index (seeds its generator).
    pub thread: usize,
    /// Outstanding operations.
    pub concurrency: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time, if the phase is timed.
    pub duration: Option<Duration>,
    /// Measured operations this thread may run (run phase).
    pub ops: Option<u64>,
    /// Hard bound on the whole phase, warm-up included.
    pub max_time: Duration,
    /// This thread's operations per second, if throttled.
    pub rate: Option<f64>,
    /// How often to report progress.
    pub progress: Option<Duration>,
}

/// A thread's report to the runner (sent with the thread's index).
pub enum ToMain {
    /// Connected; waiting for the start instant.
    Ready,
    /// Could not connect (the thread returns the error).
    Failed,
    /// Every task of the thread has finished.
    Done,
    /// Measurements of one progress interval (`tick` counts from 1).
    Progress {
        /// The interval's number.
        tick: u32,
        /// Whether the interval ended within the warm-up.
        warmup: bool,
        /// Its measurements.
        stats: Box<PhaseStats>,
    },
}

/// What a thread measured.
#[derive(Debug, Default)]
pub struct ThreadOutcome {
    /// The measured operations.
    pub stats: PhaseStats,
    /// Failures during the warm-up (not in `stats`; they still fail the run).
    pub warmup: PhaseStats,
    /// When the last measured operation completed.
    pub last_done: Option<Instant>,
    /// Whether the phase hit `max_time` before it was done.
    pub timed_out: bool,
    /// The client thread's busy time (its executor running tasks) in the measured window,
    /// if the window was timed.
    pub busy: Option<Duration>,
}

struct Ctx {
    shared: Arc<Shared>,
    plan: ThreadPlan,
    gen: RefCell<OpGenerator>,
    warm_end: Instant,
    /// Stop issuing at this instant.
    stop_at: Instant,
    /// End of a timed measurement window (ops completing later are not counted).
    measure_end: Option<Instant>,
    budget: Cell<u64>,
    next_slot: Cell<Instant>,
    out: RefCell<ThreadOutcome>,
    interval: RefCell<PhaseStats>,
    /// Every task has returned.
    finished: Cell<bool>,
}

/// Runs `plan` on the current executor: connects, reports ready, waits for the start
/// instant from `go` (`None` = abort), runs the tasks.
pub async fn run_thread(
    shared: Arc<Shared>,
    plan: ThreadPlan,
    to_main: flume::Sender<(usize, ToMain)>,
    go: flume::Receiver<Option<Instant>>,
) -> Result<ThreadOutcome, String> {
    let thread = plan.thread;
    let target = match shared.target.connect().await {
        Ok(t) => t,
        Err(e) => {
            let _ = to_main.send((thread, ToMain::Failed));
            return Err(e);
        }
    };
    let _ = to_main.send((thread, ToMain::Ready));
    let Ok(Some(start)) = go.recv_async().await else {
        return Err("aborted: another client thread could not start".into());
    };
    glommio::timer::sleep(start.saturating_duration_since(Instant::now())).await;
    let ctx = Rc::new(new_ctx(shared, plan, start));
    let done = Notify::new();
    let reporter =
        ctx.plan.progress.map(|every| glommio::spawn_local(report(ctx.clone(), to_main.clone(), every, done.clone())));
    let busy = ctx.measure_end.map(|end| glommio::spawn_local(measure_busy(ctx.warm_end, end)));
    let tasks: Vec<_> =
        (0..ctx.plan.concurrency).map(|_| glommio::spawn_local(task(ctx.clone(), target.clone()))).collect();
    for t in tasks {
        t.await;
    }
    if let Some(b) = busy {
        let busy = b.await;
        ctx.out.borrow_mut().busy = busy;
    }
    ctx.finished.set(true);
    done.notify_all();
    if let Some(r) = reporter {
        r.await;
    }
    target.close().await;
    let _ = to_main.send((thread, ToMain::Done));
    let outcome = std::mem::take(&mut *ctx.out.borrow_mut());
    Ok(outcome)
}

fn new_ctx(shared: Arc<Shared>, plan: ThreadPlan, start: Instant) -> Ctx {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = (plan.thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ now.as_nanos() as u64;
    let gen = OpGenerator::new(&shared.workload, shared.inserts.clone(), seed);
    let warm_end = start + plan.warmup;
    let measure_end = plan.duration.map(|d| warm_end + d);
    let hard_end = start + plan.max_time;
    Ctx {
        gen: RefCell::new(gen),
        warm_end,
        stop_at: measure_end.map_or(hard_end, |m| m.min(hard_end)),
        measure_end,
        budget: Cell::new(plan.ops.unwrap_or(u64::MAX)),
        next_slot: Cell::new(start),
        out: RefCell::new(ThreadOutcome::default()),
        interval: RefCell::new(PhaseStats::default()),
        finished: Cell::new(false),
        shared,
        plan,
    }
}

/// The executor's busy time between `from` and `to`: glommio's executor stats hand over
/// (and reset) what accumulated since they were last read. `None` if the window was missed.
async fn measure_busy(from: Instant, to: Instant) -> Option<Duration> {
    glommio::timer::sleep(from.saturating_duration_since(Instant::now())).await;
    let _ = glommio::executor().executor_stats();
    glommio::timer::sleep(to.saturating_duration_since(Instant::now())).await;
    let busy = glommio::executor().executor_stats().total_runtime();
    (Instant::now() < to + Duration::from_millis(100)).then_some(busy)
}

/// One closed-loop task: throttle, pick, send, measure, until the phase is over.
async fn task(ctx: Rc<Ctx>, target: Rc<dyn Target>) {
    loop {
        throttle(&ctx).await;
        let now = Instant::now();
        if now >= ctx.stop_at {
            if ctx.measure_end.is_none() {
                ctx.out.borrow_mut().timed_out = true;
            }
            return;
        }
        let measuring = now >= ctx.warm_end;
        let Some(op) = next_op(&ctx, measuring) else { return };
        let kind = op.kind();
        let inserted = match &op {
            Op::Insert { ordinal, .. } if ctx.plan.phase == Phase::Run => Some(*ordinal),
            _ => None,
        };
        let t0 = Instant::now();
        let result = execute(&*target, op).await;
        let t1 = Instant::now();
        if let Some(ordinal) = inserted {
            ctx.gen.borrow().acknowledge(ordinal);
        }
        match &result {
            Ok(()) => ctx.interval.borrow_mut().ok(kind, t1 - t0),
            Err(e) => ctx.interval.borrow_mut().failed(kind, e, t1 - t0),
        }
        let mut out = ctx.out.borrow_mut();
        match result {
            Err(e) if measuring => out.stats.failed(kind, &e, t1 - t0),
            Err(e) => out.warmup.failed(kind, &e, t1 - t0),
            Ok(()) if measuring && ctx.measure_end.is_none_or(|end| t1 <= end) => {
                out.stats.ok(kind, t1 - t0);
                out.last_done = out.last_done.max(Some(t1));
            }
            Ok(()) => {}
        }
    }
}

/// The next operation, or `None` when this thread's share of the phase is done.
fn next_op(ctx: &Ctx, measuring: bool) -> Option<Op> {
    match ctx.plan.phase {
        Phase::Load => {
            let w = &ctx.shared.workload;
            let ordinal = ctx.shared.load_next.fetch_add(1, Ordering::Relaxed);
            (ordinal < w.insertstart + w.insertcount).then(|| ctx.gen.borrow_mut().insert(ordinal))
        }
        Phase::Run => {
            if measuring {
                let left = ctx.budget.get();
                if left == 0 {
                    return None;
                }
                ctx.budget.set(left - 1);
            }
            Some(ctx.gen.borrow_mut().next_op())
        }
    }
}

/// Runs one operation; a missing record is a failure (YCSB's NOT_FOUND).
async fn execute(target: &dyn Target, op: Op) -> Result<(), String> {
    match op {
        Op::Read { key } => target.read(key).await?.map(drop).ok_or_else(|| "record not found".to_string()),
        Op::Update { key, value } => target.update(key, value).await,
        Op::Insert { key, value, .. } => target.insert(key, value).await,
        Op::Scan { key, len } => target.scan(key, len).await.map(drop),
        Op::ReadModifyWrite { key, value } => {
            target.read(key.clone()).await?.ok_or_else(|| "record not found".to_string())?;
            target.update(key, value).await
        }
    }
}

/// Waits for this thread's next send slot when throttled. A thread that fell behind may
/// catch up by at most 100 ms worth of operations at once.
async fn throttle(ctx: &Ctx) {
    let Some(rate) = ctx.plan.rate else { return };
    let now = Instant::now();
    let floor = now.checked_sub(Duration::from_millis(100)).unwrap_or(now);
    let slot = ctx.next_slot.get().max(floor);
    ctx.next_slot.set(slot + Duration::from_secs_f64(1.0 / rate));
    if slot > now {
        glommio::timer::sleep(slot - now).await;
    }
}

/// Sends the interval's measurements every `every` until `done` fires.
async fn report(ctx: Rc<Ctx>, to_main: flume::Sender<(usize, ToMain)>, every: Duration, done: Notify) {
    let start = ctx.warm_end - ctx.plan.warmup;
    for tick in 1u32.. {
        let at = start + every * tick;
        let finished = done.notified();
        if ctx.finished.get() {
            return;
        }
        let wait = at.saturating_duration_since(Instant::now());
        let stopped = futures_lite::future::or(
            async {
                glommio::timer::sleep(wait).await;
                false
            },
            async {
                finished.await;
                true
            },
        )
        .await;
        if stopped {
            return;
        }
        let stats = Box::new(ctx.interval.borrow_mut().take());
        let msg = ToMain::Progress { tick, warmup: at <= ctx.warm_end, stats };
        if to_main.send((ctx.plan.thread, msg)).is_err() {
            return;
        }
    }
}
