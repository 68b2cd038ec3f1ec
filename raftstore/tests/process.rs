//! Real processes: `percore-pd` and three `percore-server`s on loopback. Write, `kill -9` one
//! store, keep writing, restart it: every acknowledged write is readable and the replicas
//! converge.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with(expect_prefix), "unexpected first line {line:?}");
        Proc { child, line: line.trim().to_string() }
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

fn server(pd: &str, dir: &Path, config: &Path) -> Proc {
    let mut cmd = Command::new(bin("percore-server"));
    cmd.args(["--pd", pd, "--addr", "127.0.0.1:0", "--shards", "2", "--log", "warn", "--data-dir"])
        .arg(dir)
        .arg("--config")
        .arg(config);
    Proc::spawn(&mut cmd, "percore-server store")
}

#[test]
fn kill_9_a_store_and_restart_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("store.toml");
    std::fs::write(
        &config,
        "[raft]\nbase-tick-ms = 20\nlog-gc-interval-ms = 200\nflush-interval-ms = 200\n[pd]\nstore-heartbeat-ms = 200\nregion-heartbeat-ms = 500\n[storage]\nblock-cache-mb = 16\nwrite-buffer-mb = 8\nlog-segment-mb = 4\n",
    )
    .unwrap();
    let mut pd_cmd = Command::new(bin("percore-pd"));
    pd_cmd.args(["--addr", "127.0.0.1:0", "--log", "warn", "--data-dir"]).arg(dir.path().join("pd"));
    let pd = Proc::spawn(&mut pd_cmd, "percore-pd listening on");
    let pd_addr = pd.line.rsplit(' ').next().unwrap().to_string();
    let mut stores: Vec<Proc> = (0..3).map(|i| server(&pd_addr, &dir.path().join(format!("s{i}")), &config)).collect();
    let store_id = |p: &Proc| p.line.split_whitespace().nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap();
    let ids: Vec<u64> = stores.iter().map(store_id).collect();
    let acked = percore_tests::workload::acked();
    let (a, p) = (acked.clone(), pd_addr.clone());
    percore_tests::cluster::run(move || async move {
        let (pd, kv) = (percore_tests::cluster::pd_client(&p), percore_tests::cluster::kv_client(&p));
        percore_tests::cluster::replicate_all(&pd, &kv, &ids).await;
        let s = percore_tests::workload::write_keys(&kv, 8, 250, 64, &a, Duration::from_secs(60)).await;
        assert_eq!(s.acked, 2000);
    });
    stores[1].kill9();
    let (a, p) = (acked.clone(), pd_addr.clone());
    percore_tests::cluster::run(move || async move {
        let kv = percore_tests::cluster::kv_client(&p);
        // Clients 8.. write new keys while the store is down.
        let more = percore_tests::workload::acked();
        let mut tasks = Vec::new();
        for c in 8..16 {
            let (kv, more) = (kv.clone(), more.clone());
            tasks.push(glommio::spawn_local(async move {
                for i in 0..250 {
                    kv.put(percore_tests::workload::key(c, i), percore_tests::workload::value(c, i, 64)).await.unwrap();
                    more.lock()
                        .unwrap()
                        .insert(percore_tests::workload::key(c, i), percore_tests::workload::value(c, i, 64));
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let more = more.lock().unwrap().clone();
        a.lock().unwrap().extend(more);
    });
    stores[1] = server(&pd_addr, &dir.path().join("s1"), &config);
    let (a, p) = (acked.clone(), pd_addr.clone());
    percore_tests::cluster::run(move || async move {
        let (pd, kv) = (percore_tests::cluster::pd_client(&p), percore_tests::cluster::kv_client(&p));
        percore_tests::workload::verify(&kv, &a).await;
        percore_tests::cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(60)).await;
        assert_eq!(a.lock().unwrap().len(), 4000);
    });
    for s in &mut stores {
        s.kill9();
    }
    drop(pd);
}
