//! Helpers for PD tests: PD in its own executor thread, or as a real process.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use net::proto::metapb::{Peer, Region, RegionEpoch, Store};
use pd::{PdClient, PdClientConfig};

/// Runs `f` on a fresh executor.
pub fn run<T: Send + 'static, F: Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
    glommio::LocalExecutorBuilder::default().io_memory(256 << 10).spawn(f).unwrap().join().unwrap()
}

/// A PD running on its own executor thread until `stop` is called.
pub struct InProcessPd {
    pub addr: String,
    stop: flume::Sender<()>,
    thread: glommio::ExecutorJoinHandle<()>,
}

impl InProcessPd {
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, "127.0.0.1:0")
    }

    /// Starts on a given address.
    pub fn start_on(dir: &Path, addr: &str) -> Self {
        let dir = dir.to_path_buf();
        let bind = addr.to_string();
        let (addr_tx, addr_rx) = flume::bounded(1);
        let (stop, stop_rx) = flume::bounded::<()>(1);
        let thread = glommio::LocalExecutorBuilder::default()
            .io_memory(256 << 10)
            .spawn(move || async move {
                let pd = pd::Pd::open(&dir).expect("open PD");
                let listener = glommio::net::TcpListener::bind(bind.as_str()).unwrap();
                addr_tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                let stop = async move {
                    let _ = stop_rx.recv_async().await;
                };
                pd::server::spawn_server(pd, listener, net::ConnConfig::default(), stop).await;
            })
            .unwrap();
        let addr = addr_rx.recv_timeout(Duration::from_secs(20)).expect("PD did not start");
        InProcessPd { addr, stop, thread }
    }

    /// Stops the executor: every task and PD's storage are dropped.
    pub fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// A `percore-pd` process.
pub struct PdProcess {
    pub addr: String,
    pub child: Child,
}

impl PdProcess {
    pub fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_percore-pd"))
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn percore-pd");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(Instant::now() < deadline);
        let addr = line
            .trim()
            .strip_prefix("percore-pd listening on ")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .to_string();
        PdProcess { addr, child }
    }

    /// SIGKILL, and reap.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for PdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client(addr: &str) -> PdClient {
    PdClient::new(PdClientConfig::new(vec![addr.to_string()]))
}

pub fn store(id: u64) -> Store {
    Store {
        id,
        address: format!("127.0.0.1:{}", 20000 + id),
        shard_addresses: vec![format!("127.0.0.1:{}", 20000 + id)],
        ..Default::default()
    }
}

pub fn region(id: u64, start: &[u8], end: &[u8], conf_ver: u64, version: u64, stores: &[u64]) -> Region {
    Region {
        id,
        start_key: start.to_vec().into(),
        end_key: end.to_vec().into(),
        region_epoch: Some(RegionEpoch { conf_ver, version }),
        peers: stores.iter().map(|&s| Peer { id: id * 100 + s, store_id: s, role: 0 }).collect(),
    }
}

/// `clients` PD clients (own connections) each take `per_client` timestamps one at a time,
/// concurrently. Returns every request as (invoke, complete, ts).
pub async fn concurrent_tso(addr: &str, clients: usize, per_client: usize) -> Vec<(Instant, Instant, u64)> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let c = client(addr);
        tasks.push(glommio::spawn_local(async move {
            let mut out = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t0 = Instant::now();
                let ts = c.get_ts().await.expect("tso");
                out.push((t0, Instant::now(), ts));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await);
    }
    all
}

/// Checks that timestamps are unique and respect real time: a request that began after
/// another completed got a larger timestamp.
pub fn assert_tso_linearizable(history: &[(Instant, Instant, u64)]) {
    let mut ts: Vec<u64> = history.iter().map(|h| h.2).collect();
    ts.sort_unstable();
    ts.dedup();
    assert_eq!(ts.len(), history.len(), "duplicate timestamps");
    let mut by_complete: Vec<&(Instant, Instant, u64)> = history.iter().collect();
    by_complete.sort_by_key(|h| h.1);
    // prefix_max[i] = the largest ts among the first i completions.
    let mut prefix_max = vec![0u64; by_complete.len() + 1];
    for (i, h) in by_complete.iter().enumerate() {
        prefix_max[i + 1] = prefix_max[i].max(h.2);
    }
    for h in history {
        let done_before = by_complete.partition_point(|o| o.1 < h.0);
        assert!(
            prefix_max[done_before] < h.2,
            "timestamp {} is not above {} handed out before the request began",
            h.2,
            prefix_max[done_before]
        );
    }
}

/// A free loopback port right now.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Runs `percore-ctl --pd addr --json args...` and parses its output.
pub fn ctl_json(addr: &str, args: &[&str]) -> serde_json::Value {
    let out =
        Command::new(env!("CARGO_BIN_EXE_percore-ctl")).args(["--pd", addr, "--json"]).args(args).output().unwrap();
    assert!(out.status.success(), "percore-ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
