//! Process chaos: `percore-pd` and `percore-server` processes on loopback, killed (-9),
//! paused (SIGSTOP … SIGCONT) and restarted at random while clients run; at the end every
//! process is healed and the clients' work is checked. Two workloads: registers (the history
//! is checked for linearizability and every acknowledged append is read back) and the
//! [`crate::bank`] transactions (its invariants and snapshot isolation). Run by
//! `percore-chaos` (long runs) and by the `chaos` test (short ones).
//!
//! Faults never take more than one store down or paused at a time (a 3-store cluster keeps a
//! quorum, so the clients make progress); PD is killed or paused independently. Safety does
//! not depend on that rule — only the amount of progress does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::kv::{KvClient, KvConfig, TxnClient, TxnConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bank::{self, BankConfig};
use crate::cluster;
use crate::linearizability::{self, cas_outcome, CheckConfig, Op, Outcome, Recorder};
use crate::workload;

/// A chaos run's settings.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Stores (≥ 3).
    pub stores: usize,
    /// How long faults are injected.
    pub duration: Duration,
    /// Clients on the shared registers.
    pub clients: usize,
    /// Shared registers (keys).
    pub keys: usize,
    /// Random seed of the fault schedule and the clients.
    pub seed: u64,
    /// Directory holding `percore-pd` and `percore-server` (default: next to this program).
    pub bin_dir: Option<PathBuf>,
    /// What the clients run.
    pub workload: ChaosWorkload,
    /// When set, every process logs at info level to `<dir>/pd.log` and `<dir>/s<i>.log`
    /// (appended across restarts) instead of logging errors to nowhere.
    pub log_dir: Option<PathBuf>,
}

/// The clients of a chaos run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosWorkload {
    /// Raw get / put / compare-and-swap on shared registers plus an appender; checked for
    /// linearizability and durability.
    Registers,
    /// The [`crate::bank`] transactions; checked for the bank invariants and snapshot
    /// isolation.
    Bank,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            stores: 3,
            duration: Duration::from_secs(30),
            clients: 6,
            keys: 4,
            seed: 0,
            bin_dir: None,
            workload: ChaosWorkload::Registers,
            log_dir: None,
        }
    }
}

/// What a run did and found.
#[derive(Debug)]
pub struct ChaosReport {
    /// The faults injected, in order, with their time.
    pub faults: Vec<String>,
    /// What the clients did and the checkers found.
    pub summary: String,
    /// Whether every check passed (linearizable and nothing acknowledged lost; or the bank's
    /// invariants and snapshot isolation held).
    pub ok: bool,
}

/// Finds `name` next to the running program (or in its parent, for test binaries in `deps/`).
pub fn find_bin(dir: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut candidates = Vec::new();
    if let Some(d) = dir {
        candidates.push(d.join(name));
    }
    if let Some(d) = exe.parent() {
        candidates.push(d.join(name));
        if let Some(p) = d.parent() {
            candidates.push(p.join(name));
        }
    }
    candidates.into_iter().find(|p| p.exists()).ok_or_else(|| {
        format!("{name} not found next to {}: build it first (cargo build --release --workspace)", exe.display())
    })
}

/// One child process; its first stdout line tells its address.
struct Proc {
    child: Child,
    line: String,
    paused: bool,
}

impl Proc {
    fn spawn(mut cmd: Command, expect: &str, stderr: Stdio) -> Result<Proc, String> {
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().map_err(|e| format!("spawn: {e}"))?;
        let mut line = String::new();
        let out = child.stdout.take().ok_or("no stdout")?;
        let _ = BufReader::new(out).read_line(&mut line);
        if !line.starts_with(expect) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("expected {expect:?}, got {line:?}"));
        }
        Ok(Proc { child, line: line.trim().to_string(), paused: false })
    }

    fn signal(&mut self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Procs {
    dir: tempfile::TempDir,
    pd_bin: PathBuf,
    server_bin: PathBuf,
    pd_addr: String,
    pd: Option<Proc>,
    stores: Vec<Option<Proc>>,
    log_dir: Option<PathBuf>,
}

const STORE_CONFIG: &str = "[raft]\nbase-tick-ms = 50\nlog-gc-interval-ms = 500\nflush-interval-ms = 500\n\
[pd]\nstore-heartbeat-ms = 300\nregion-heartbeat-ms = 500\n[storage]\nblock-cache-mb = 16\nwrite-buffer-mb = 8\n\
log-segment-mb = 4\n";

impl Procs {
    fn start(cfg: &ChaosConfig) -> Result<Procs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("store.toml"), STORE_CONFIG).map_err(|e| e.to_string())?;
        // PD keeps its address across restarts: the stores know it by address.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let mut p = Procs {
            pd_bin: find_bin(cfg.bin_dir.as_deref(), "percore-pd")?,
            server_bin: find_bin(cfg.bin_dir.as_deref(), "percore-server")?,
            pd_addr: format!("127.0.0.1:{port}"),
            dir,
            pd: None,
            stores: (0..cfg.stores).map(|_| None).collect(),
            log_dir: cfg.log_dir.clone(),
        };
        p.start_pd()?;
        for i in 0..cfg.stores {
            p.start_store(i)?;
        }
        Ok(p)
    }

    /// The `--log` level and stderr of the process whose log is `name`.
    fn log_for(&self, name: &str) -> Result<(&'static str, Stdio), String> {
        let Some(dir) = &self.log_dir else { return Ok(("error", Stdio::null())) };
        let path = dir.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        Ok(("info", f.into()))
    }

    fn start_pd(&mut self) -> Result<(), String> {
        // The old process's socket may linger a moment.
        let mut last = String::new();
        for _ in 0..50 {
            let (level, stderr) = self.log_for("pd.log")?;
            let mut cmd = Command::new(&self.pd_bin);
            cmd.args(["--addr", &self.pd_addr, "--log", level, "--data-dir"]).arg(self.dir.path().join("pd"));
            match Proc::spawn(cmd, "percore-pd listening on", stderr) {
                Ok(p) => {
                    self.pd = Some(p);
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("PD did not restart: {last}"))
    }

    fn start_store(&mut self, i: usize) -> Result<(), String> {
        let (level, stderr) = self.log_for(&format!("s{i}.log"))?;
        let mut cmd = Command::new(&self.server_bin);
        cmd.args(["--pd", &self.pd_addr, "--addr", "127.0.0.1:0", "--shards", "1", "--log", level, "--data-dir"])
            .arg(self.dir.path().join(format!("s{i}")))
            .arg("--config")
            .arg(self.dir.path().join("store.toml"));
        self.stores[i] = Some(Proc::spawn(cmd, "percore-server store", stderr)?);
        Ok(())
    }

    fn store_id(&self, i: usize) -> u64 {
        let line = self.stores[i].as_ref().map(|p| p.line.as_str()).unwrap_or("");
        line.split_whitespace().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// SIGCONT everything paused, restarts everything dead.
    fn heal(&mut self) -> Result<(), String> {
        if let Some(p) = self.pd.as_mut().filter(|p| p.paused) {
            p.signal(libc::SIGCONT);
            p.paused = false;
        }
        if self.pd.is_none() {
            self.start_pd()?;
        }
        for i in 0..self.stores.len() {
            if let Some(p) = self.stores[i].as_mut().filter(|p| p.paused) {
                p.signal(libc::SIGCONT);
                p.paused = false;
            }
            if self.stores[i].is_none() {
                self.start_store(i)?;
            }
        }
        Ok(())
    }
}

/// Runs the chaos: starts the processes, replicates, runs clients and faults, heals, checks.
pub fn run(cfg: &ChaosConfig) -> Result<ChaosReport, String> {
    let mut procs = Procs::start(cfg)?;
    let ids: Vec<u64> = (0..cfg.stores).map(|i| procs.store_id(i)).collect();
    let pd_addr = procs.pd_addr.clone();
    {
        let p = pd_addr.clone();
        cluster::run(move || async move {
            let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
            cluster::replicate_all(&pd, &kv, &ids).await;
        });
    }
    match cfg.workload {
        ChaosWorkload::Registers => run_registers(&mut procs, cfg),
        ChaosWorkload::Bank => run_bank(&mut procs, cfg),
    }
}

/// The clients' KV configuration under faults: short deadlines, so that a client notices a
/// dead or paused store quickly and moves on.
fn chaos_kv(pd_addr: &str) -> KvClient {
    let mut kcfg = KvConfig { deadline: Duration::from_secs(2), ..KvConfig::default() };
    kcfg.conn.call_timeout = Duration::from_millis(800);
    KvClient::new(std::rc::Rc::new(cluster::pd_client(pd_addr)), kcfg)
}

/// The bank under faults: set up, transfer and read while faults run, heal, verify.
fn run_bank(procs: &mut Procs, cfg: &ChaosConfig) -> Result<ChaosReport, String> {
    let pd_addr = procs.pd_addr.clone();
    let bank_cfg = BankConfig { seed: cfg.seed, ..BankConfig::default() };
    let (stop, healed_flag) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let clients = {
        let (p, s, h, bc) = (pd_addr.clone(), stop.clone(), healed_flag.clone(), bank_cfg.clone());
        std::thread::spawn(move || {
            cluster::run(move || async move {
                let pd = std::rc::Rc::new(cluster::pd_client(&p));
                let txn = TxnClient::new(chaos_kv(&p), pd, TxnConfig::default());
                let set_up = bank::setup(txn.kv(), &txn, &bc).await;
                let failed = set_up.is_err();
                let _ = ready_tx.send(set_up);
                if failed {
                    return Err("set-up failed".to_string());
                }
                let log = bank::run(&txn, &bc, &s).await;
                // Verified with every process healthy: wait for the heal.
                while !h.load(Ordering::SeqCst) {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
                bank::verify(&txn, &bc, log, Duration::from_secs(60)).await
            })
        })
    };
    ready_rx.recv().map_err(|_| "the bank clients died".to_string())??;
    let faults = inject(procs, cfg);
    stop.store(true, Ordering::SeqCst);
    let healed = procs.heal();
    healed_flag.store(true, Ordering::SeqCst);
    let report = clients.join().map_err(|_| "the bank clients panicked".to_string())?;
    healed?;
    let report = report?;
    Ok(ChaosReport { faults, summary: report.to_string(), ok: report.ok() })
}

/// Registers and appends under faults; linearizability and durability checked.
fn run_registers(procs: &mut Procs, cfg: &ChaosConfig) -> Result<ChaosReport, String> {
    let pd_addr = procs.pd_addr.clone();
    let recorder = Recorder::new();
    let acked = workload::acked();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = {
        let (p, r, a, s, cfg) = (pd_addr.clone(), recorder.clone(), acked.clone(), stop.clone(), cfg.clone());
        std::thread::spawn(move || cluster::run(move || async move { run_clients(&p, &r, &a, &s, &cfg).await }))
    };
    let faults = inject(procs, cfg);
    stop.store(true, Ordering::SeqCst);
    let healed = procs.heal();
    clients.join().map_err(|_| "the clients panicked".to_string())?;
    healed?;
    // Final reads with every process healthy, then the appends.
    let (p, r, a, keys) = (pd_addr.clone(), recorder.clone(), acked.clone(), cfg.keys);
    let verified = cluster::run(move || async move {
        let kv = cluster::kv_client(&p);
        for k in 0..keys {
            let id = r.invoke(usize::MAX, register(k), Op::Get);
            match kv.get(register(k)).await {
                Ok(v) => r.complete(id, Outcome::Get(v)),
                Err(e) => return Err(format!("final read of register {k}: {e}")),
            }
        }
        let appends = a.lock().map_err(|_| "poisoned")?.clone();
        for (k, v) in appends {
            match kv.get(k.clone()).await {
                Ok(Some(got)) if got == v => {}
                other => return Err(format!("acknowledged append {k:?} lost or changed: {other:?}")),
            }
        }
        Ok(())
    });
    let history = recorder.history();
    let report = linearizability::check(&history, &CheckConfig::default());
    let summary = format!(
        "register operations: {} ({} without an answer); acknowledged appends read back: {}; {}",
        history.ops.len(),
        history.unknown(),
        acked.lock().map(|a| a.len()).unwrap_or(0),
        report
    );
    verified?;
    Ok(ChaosReport { faults, summary, ok: report.is_linearizable() })
}

fn register(k: usize) -> Bytes {
    Bytes::from(format!("register-{k}"))
}

/// Injects faults until `cfg.duration` has passed; returns what it did.
fn inject(procs: &mut Procs, cfg: &ChaosConfig) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0xfa17);
    let start = Instant::now();
    let mut log = Vec::new();
    let mut note = |what: String| log.push(format!("{:>7.2}s {what}", start.elapsed().as_secs_f64()));
    while start.elapsed() < cfg.duration {
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..2000)));
        let i = rng.gen_range(0..cfg.stores);
        let hold = Duration::from_millis(rng.gen_range(300..2500));
        match rng.gen_range(0..10) {
            0..=3 => {
                if let Some(mut p) = procs.stores[i].take() {
                    p.kill9();
                    note(format!("kill -9 store {} (s{i})", procs_id(&p)));
                    std::thread::sleep(hold);
                    match procs.start_store(i) {
                        Ok(()) => note(format!("restart s{i} after {hold:?}")),
                        Err(e) => note(format!("restart s{i} failed: {e}")),
                    }
                }
            }
            4..=6 => {
                if let Some(p) = procs.stores[i].as_mut() {
                    p.signal(libc::SIGSTOP);
                    p.paused = true;
                    note(format!("SIGSTOP s{i}"));
                    std::thread::sleep(hold);
                    p.signal(libc::SIGCONT);
                    p.paused = false;
                    note(format!("SIGCONT s{i} after {hold:?}"));
                }
            }
            7 => {
                if let Some(mut p) = procs.pd.take() {
                    p.kill9();
                    note("kill -9 PD".into());
                    std::thread::sleep(hold);
                    match procs.start_pd() {
                        Ok(()) => note(format!("restart PD after {hold:?}")),
                        Err(e) => note(format!("restart PD failed: {e}")),
                    }
                }
            }
            _ => {
                if let Some(p) = procs.pd.as_mut() {
                    p.signal(libc::SIGSTOP);
                    p.paused = true;
                    note("SIGSTOP PD".into());
                    std::thread::sleep(hold);
                    p.signal(libc::SIGCONT);
                    p.paused = false;
                    note(format!("SIGCONT PD after {hold:?}"));
                }
            }
        }
    }
    log
}

fn procs_id(p: &Proc) -> String {
    p.line.split_whitespace().nth(2).unwrap_or("?").to_string()
}

/// Register clients (random get / put / compare-and-swap with values unique to each write)
/// and one appender (unique keys, each acknowledged append remembered), until `stop`.
async fn run_clients(
    pd_addr: &str,
    rec: &Recorder,
    acked: &workload::Acked,
    stop: &Arc<AtomicBool>,
    cfg: &ChaosConfig,
) {
    let kv = chaos_kv(pd_addr);
    let mut tasks = Vec::new();
    for c in 0..cfg.clients {
        let (kv, rec, stop) = (kv.clone(), rec.clone(), stop.clone());
        let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(c as u64));
        let keys = cfg.keys;
        tasks.push(glommio::spawn_local(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let k = register(rng.gen_range(0..keys));
                seq += 1;
                let fresh = Bytes::from(format!("c{c}-{seq}"));
                match rng.gen_range(0..3) {
                    0 => {
                        let id = rec.invoke(c, k.clone(), Op::Get);
                        if let Ok(v) = kv.get(k).await {
                            rec.complete(id, Outcome::Get(v));
                        }
                    }
                    1 => {
                        let id = rec.invoke(c, k.clone(), Op::Put(fresh.clone()));
                        // On an error the outcome stays unknown: applied at most once (the
                        // client never resends a write whose fate it does not know).
                        if kv.put(k, fresh).await.is_ok() {
                            rec.complete(id, Outcome::Put);
                        }
                    }
                    _ => {
                        // Swap from what this client last saw (or from nothing).
                        let expected = match kv.get(k.clone()).await {
                            Ok(v) => v,
                            Err(_) => continue,
                        };
                        let new = Some(fresh);
                        let op = Op::Cas { expected: expected.clone(), new: new.clone() };
                        let id = rec.invoke(c, k.clone(), op);
                        if let Ok(r) = kv.compare_and_swap(k, expected.clone(), new.clone()).await {
                            rec.complete(id, cas_outcome(&expected, &new, &r));
                        }
                    }
                }
            }
        }));
    }
    {
        let (kv, acked, stop) = (kv.clone(), acked.clone(), stop.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (k, v) = (workload::key(99, i), workload::value(99, i, 64));
                if kv.put(k.clone(), v.clone()).await.is_ok() {
                    if let Ok(mut a) = acked.lock() {
                        a.insert(k, v);
                    }
                    i += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await;
    }
}
