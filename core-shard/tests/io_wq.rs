//! io_uring's kernel workers stay off the reactor's core (glommio patch 4, `PoolConfig`'s
//! blocking CPUs). A one-shard pool on CPU 0 of a machine with more CPUs puts its blocking
//! pool — and so the `iou-wrk-*` threads that run its fdatasyncs — on the other CPUs. Left
//! on CPU 0 they wait for the spinning executor: an fdatasync took 300 µs instead of 90 µs.

use core_shard::placement::{online_topology, ShardPlacement};
use core_shard::runtime::{PoolConfig, ShardPool};
use glommio::io::OpenOptions;

/// `(name, Cpus_allowed_list)` of every thread of this process.
fn threads() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let cpus = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("").trim();
        out.push((comm.trim().to_string(), cpus.to_string()));
    }
    out
}

#[test]
fn io_uring_workers_of_a_one_shard_pool_run_off_its_cpu() {
    let cpus: Vec<usize> = online_topology().expect("topology").iter().map(|c| c.cpu).collect();
    if !cpus.contains(&0) || cpus.len() < 2 {
        eprintln!("skipped: needs CPU 0 and another CPU online (have {cpus:?})");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let placement = ShardPlacement { cpus: vec![0], oversubscribed: false };
    let pool = ShardPool::<(), Vec<(String, String)>>::start(PoolConfig::new("iowq", placement), move |_shard| {
        let path = path.clone();
        async move {
            let f = OpenOptions::new().create(true).read(true).write(true).dma_open(&path).await.expect("open");
            let mut buf = f.alloc_dma_buffer(4096);
            buf.as_bytes_mut().fill(7);
            f.write_at(buf, 0).await.expect("write");
            // io_uring runs fsync on an io-wq worker: this creates one.
            f.fdatasync().await.expect("fdatasync");
            let seen = threads();
            f.close().await.expect("close");
            seen
        }
    })
    .expect("pool");
    let seen = pool.join().pop().expect("one shard").expect("shard result");
    let workers: Vec<_> = seen.iter().filter(|(name, _)| name.starts_with("iou-wrk")).collect();
    assert!(!workers.is_empty(), "no io_uring worker thread seen after an fdatasync: {seen:?}");
    for (name, allowed) in &workers {
        assert!(
            allowed != "0" && !allowed.split(',').any(|r| r == "0" || r.starts_with("0-")),
            "{name} may run on the shard's CPU 0 (allowed: {allowed})"
        );
    }
}
