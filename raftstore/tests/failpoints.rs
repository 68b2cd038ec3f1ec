//! Crash points (built with `--features failpoints`; run by `make test-failpoints`).
//!
//! For every crash point of `core_shard::failpoint`: PD and three `percore-server` processes
//! on loopback; clients write; the store leading the first region is killed, more is written
//! (enough for the log to be compacted past it), and it restarts with `FAILPOINTS=<point>=return`
//! while writes go on — it must crash at that point (the test fails if the point is never
//! reached). It then restarts without the point: every acknowledged write is readable and
//! all replicas converge.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore_tests::{cluster, workload};

fn bin(name: &str) -> PathBuf {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_percore-server"));
    let p = server.with_file_name(name);
    assert!(p.exists(), "{} not built: run the workspace tests (cargo test --workspace)", p.display());
    p
}

struct Proc {
    child: Child,
    line: String,
}

impl Proc {
    fn spawn(cmd: &mut Command, expect_prefix: &str) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        assert!(line.starts_with(expect_prefix), "unexpected first line {line:?}");
        Proc { child, line: line.trim().to_string() }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

const CONFIG: &str = "[raft]\nbase-tick-ms = 20\nlog-gc-interval-ms = 100\nflush-interval-ms = 100\n\
log-gc-count-limit = 200\nlog-gc-keep = 10\n[split]\nregion-split-size = 262144\nsplit-check-interval-ms = 100\n\
[pd]\nstore-heartbeat-ms = 200\nregion-heartbeat-ms = 300\n[storage]\nblock-cache-mb = 16\nwrite-buffer-mb = 8\nlog-segment-mb = 4\n";

/// Starts a store; until it has printed its first line, a crash point may already fire (then
/// `None`).
/// With `PERCORE_FAILPOINTS_LOG_DIR` set, each store logs at info level to
/// `<dir>/<test dir>-<store dir>.log` (appended across restarts) for debugging a failed run.
fn server(pd: &str, dir: &Path, config: &Path, failpoint: Option<&str>) -> Option<Proc> {
    let failpoints = failpoint.map(|f| format!("{f}=return"));
    match std::env::var_os("PERCORE_FAILPOINTS_LOG_DIR") {
        Some(logs) => {
            let name = |p: Option<&Path>| {
                p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            };
            let path = Path::new(&logs).join(format!("{}-{}.log", name(dir.parent()), name(Some(dir))));
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open store log");
            server_with(pd, dir, config, failpoints.as_deref(), "info", log.into())
        }
        None => server_with(pd, dir, config, failpoints.as_deref(), "warn", Stdio::inherit()),
    }
}

/// [`server`] with a whole `FAILPOINTS` value, a log filter and where its stderr goes.
fn server_with(
    pd: &str,
    dir: &Path,
    config: &Path,
    failpoints: Option<&str>,
    log: &str,
    stderr: Stdio,
) -> Option<Proc> {
    let mut cmd = Command::new(bin("percore-server"));
    cmd.args(["--pd", pd, "--addr", "127.0.0.1:0", "--shards", "1", "--log", log, "--data-dir"])
        .arg(dir)
        .arg("--config")
        .arg(config);
    match failpoints {
        Some(f) => cmd.env("FAILPOINTS", f),
        None => cmd.env_remove("FAILPOINTS"),
    };
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    if line.is_empty() {
        let _ = child.wait();
        return None;
    }
    assert!(line.starts_with("percore-server store"), "unexpected first line {line:?}");
    Some(Proc { child, line: line.trim().to_string() })
}

/// Writes keys of clients `from..from+4` until `stop` is set or `limit` keys each; records acks.
fn write_until(pd: &str, acked: &workload::Acked, from: usize, limit: usize, stop: Arc<AtomicBool>) {
    let (p, a) = (pd.to_string(), acked.clone());
    cluster::run(move || async move {
        let kv = cluster::kv_client(&p);
        let mut tasks = Vec::new();
        for c in from..from + 4 {
            let (kv, a, stop) = (kv.clone(), a.clone(), stop.clone());
            tasks.push(glommio::spawn_local(async move {
                for i in 0..limit {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (k, v) = (workload::key(c, i), workload::value(c, i, 256));
                    // A put that fails (its store crashed under it) is not acknowledged.
                    if kv.put(k.clone(), v.clone()).await.is_ok() {
                        a.lock().unwrap().insert(k, v);
                    }
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

fn crash_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("store.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut pd_cmd = Command::new(bin("percore-pd"));
    pd_cmd.args(["--addr", "127.0.0.1:0", "--log", "warn", "--data-dir"]).arg(dir.path().join("pd"));
    let pd = Proc::spawn(&mut pd_cmd, "percore-pd listening on");
    let pd_addr = pd.line.rsplit(' ').next().unwrap().to_string();
    let store_dir = |i: usize| dir.path().join(format!("s{i}"));
    let mut stores: Vec<Option<Proc>> = (0..3).map(|i| server(&pd_addr, &store_dir(i), &config, None)).collect();
    let store_id = |p: &Proc| p.line.split_whitespace().nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap();
    let ids: Vec<u64> = stores.iter().map(|s| store_id(s.as_ref().unwrap())).collect();
    let acked = workload::acked();
    // Replicate, write, find the leader.
    let (p, ids2) = (pd_addr.clone(), ids.clone());
    let leader = cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        cluster::replicate_all(&pd, &kv, &ids2).await;
        pd.get_region(b"").await.unwrap().leader.map(|l| l.store_id).unwrap()
    });
    write_until(&pd_addr, &acked, 0, 100, Arc::new(AtomicBool::new(false)));
    let victim = ids.iter().position(|&s| s == leader).unwrap();
    stores[victim].as_mut().unwrap().kill9();
    stores[victim] = None;
    // Enough for log compaction past the victim (it will need a snapshot) and for splits.
    write_until(&pd_addr, &acked, 4, 400, Arc::new(AtomicBool::new(false)));
    // Restart it armed, writing meanwhile, until it crashes at the point.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (p, a, stop) = (pd_addr.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || write_until(&p, &a, 8, 100_000, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut crashed = false;
    match server(&pd_addr, &store_dir(victim), &config, Some(point)) {
        None => crashed = true,
        Some(mut p) => {
            while Instant::now() < deadline {
                if p.exited() {
                    crashed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(crashed, "crash point {point} was never reached");
    // Back without the point: nothing acknowledged is lost, replicas converge.
    stores[victim] = server(&pd_addr, &store_dir(victim), &config, None);
    assert!(stores[victim].is_some(), "the store did not restart after crashing at {point}");
    write_until(&pd_addr, &acked, 12, 50, Arc::new(AtomicBool::new(false)));
    let (p, a) = (pd_addr.clone(), acked.clone());
    let n = acked.lock().unwrap().len();
    let regions = cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        workload::verify(&kv, &a).await;
        cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(60)).await
    });
    eprintln!("crash point {point}: recovered; {n} acknowledged writes intact, {regions} regions converged");
    for s in stores.iter_mut().flatten() {
        s.kill9();
    }
    drop(pd);
}

#[test]
fn crash_before_log_append() {
    crash_at("log::append::before");
}

#[test]
fn crash_after_log_write() {
    crash_at("log::write::after");
}

#[test]
fn crash_before_fsync() {
    crash_at("log::fsync::before");
}

#[test]
fn crash_after_fsync() {
    crash_at("log::fsync::after");
}

#[test]
fn crash_before_apply_write() {
    crash_at("apply::write::before");
}

#[test]
fn crash_after_apply_write() {
    crash_at("apply::write::after");
}

#[test]
fn crash_before_snapshot_apply() {
    crash_at("snapshot::apply::before");
}

#[test]
fn crash_after_snapshot_data() {
    crash_at("snapshot::apply::after_data");
}

#[test]
fn crash_before_split_apply() {
    crash_at("split::apply::before");
}

#[test]
fn crash_after_split_apply() {
    crash_at("split::apply::after");
}

/// RocksDB refusing a tenth of the apply writes, as during a write stall (the
/// `engine::write::stall` fault point): the stores finish those writes on the blocking pool
/// while the peer waits. Every acknowledged write stays readable, the replicas converge, and
/// the stall path was taken.
#[test]
fn stalled_apply_writes_finish_off_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("store.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut pd_cmd = Command::new(bin("percore-pd"));
    pd_cmd.args(["--addr", "127.0.0.1:0", "--log", "warn", "--data-dir"]).arg(dir.path().join("pd"));
    let pd = Proc::spawn(&mut pd_cmd, "percore-pd listening on");
    let pd_addr = pd.line.rsplit(' ').next().unwrap().to_string();
    let logs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("s{i}.log"))).collect();
    let mut stores: Vec<Proc> = (0..3)
        .map(|i| {
            let log = std::fs::File::create(&logs[i]).unwrap();
            let failpoints = Some("engine::write::stall=10%return");
            let filter = "warn,raftstore::operation=info";
            server_with(&pd_addr, &dir.path().join(format!("s{i}")), &config, failpoints, filter, log.into())
                .expect("store starts")
        })
        .collect();
    let ids: Vec<u64> =
        stores.iter().map(|p| p.line.split_whitespace().nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap()).collect();
    let acked = workload::acked();
    let (p, ids2) = (pd_addr.clone(), ids.clone());
    cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        cluster::replicate_all(&pd, &kv, &ids2).await;
    });
    write_until(&pd_addr, &acked, 0, 300, Arc::new(AtomicBool::new(false)));
    let (p, a) = (pd_addr.clone(), acked.clone());
    let n = acked.lock().unwrap().len();
    assert_eq!(n, 1200, "every write was acknowledged");
    let regions = cluster::run(move || async move {
        let (pd, kv) = (cluster::pd_client(&p), cluster::kv_client(&p));
        workload::verify(&kv, &a).await;
        cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(60)).await
    });
    for s in stores.iter_mut() {
        s.kill9();
    }
    drop(pd);
    let stalled: usize = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap().matches("apply batch is written on the blocking pool").count())
        .sum();
    eprintln!("{n} acknowledged writes intact, {regions} regions converged, {stalled} stalled apply writes");
    assert!(stalled > 0, "no apply write took the stall path");
}
