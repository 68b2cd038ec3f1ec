//! End to end through the runner, the worker and the Redis client, against a fake RESP
//! server on loopback that fails some operations on purpose.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::Parser;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::properties::Property;
use super::report::PhaseReport;
use super::resp::{self, Reply};
use super::runner::{run_phase, ClientConfig, PhaseSpec};
use super::spec::TargetSpec;
use super::worker::{Phase, Shared};
use super::workload::Workload;

/// A fake Redis: `SET` of a key ending in an odd digit fails, `GET` of a key ending in a
/// multiple of 3 finds nothing. Serves until `stop` is set.
struct FakeRedis {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl FakeRedis {
    fn start() -> FakeRedis {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                while !s.load(Ordering::Relaxed) {
                    let accept = async { Some(listener.accept().await) };
                    let tick = async {
                        glommio::timer::sleep(Duration::from_millis(20)).await;
                        None
                    };
                    if let Some(Ok(conn)) = futures_lite::future::or(accept, tick).await {
                        glommio::spawn_local(serve(conn)).detach();
                    }
                }
            })
            .unwrap();
        FakeRedis { addr: rx.recv().unwrap(), stop, thread: Some(thread) }
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(mut conn: glommio::net::TcpStream) {
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let mut out = Vec::new();
        while let Ok(Reply::Array(Some(args))) = resp::parse(&mut buf) {
            let arg = |i: usize| match args.get(i) {
                Some(Reply::Bulk(Some(b))) => b.clone(),
                _ => bytes::Bytes::new(),
            };
            let last_digit = arg(1).last().map_or(0, |b| b.wrapping_sub(b'0'));
            let reply: &[u8] = match &arg(0)[..] {
                b"PING" => b"+PONG\r\n",
                b"SET" if last_digit % 2 == 1 => b"-ERR injected failure\r\n",
                b"SET" => b"+OK\r\n",
                b"GET" if last_digit % 3 == 0 => b"$-1\r\n",
                b"GET" => b"$3\r\nabc\r\n",
                _ => b"-ERR unknown command\r\n",
            };
            out.extend_from_slice(reply);
        }
        if !out.is_empty() && conn.write_all(&out).await.is_err() {
            return;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn client(rate: Option<f64>) -> ClientConfig {
    let cpu = core_shard::placement::resolve_online(Some(1), None, Default::default()).unwrap().cpus;
    ClientConfig { threads: 1, concurrency: 8, cpus: cpu, target_rate: rate, progress: None, server_busy: None }
}

fn shared(addr: &str, records: u64) -> Arc<Shared> {
    let w = Workload::load("a", &[Property::new("recordcount", records, "test")]).unwrap();
    Arc::new(Shared::new(w, TargetSpec::Redis { addr: addr.to_string(), scan_index: false }))
}

fn spec(phase: Phase, warmup: Duration, duration: Option<Duration>, ops: Option<u64>) -> PhaseSpec {
    PhaseSpec { phase, warmup, duration, ops, max_time: Duration::from_secs(60) }
}

#[test]
fn failures_are_counted_per_operation_and_fail_the_run() {
    let redis = FakeRedis::start();
    let shared = shared(&redis.addr, 200);
    let load = run_phase(&shared, &client(None), spec(Phase::Load, Duration::ZERO, None, None)).unwrap();
    let l = PhaseReport::of(&load);
    let insert = l.op("INSERT").unwrap();
    assert_eq!(insert.count + insert.errors, 200, "every record attempted once");
    assert!(insert.errors > 50 && insert.count > 50, "{insert:?}");
    assert_eq!(insert.first_error.as_deref(), Some("ERR injected failure"));

    let run = run_phase(&shared, &client(None), spec(Phase::Run, Duration::ZERO, None, Some(2000))).unwrap();
    let r = PhaseReport::of(&run);
    let (read, update) = (r.op("READ").unwrap(), r.op("UPDATE").unwrap());
    assert_eq!(read.count + read.errors + update.count + update.errors, 2000);
    assert!(read.errors > 100 && read.count > 100, "{read:?}");
    assert!(update.errors > 100 && update.count > 100, "{update:?}");
    assert_eq!(read.first_error.as_deref(), Some("record not found"));
    assert_eq!(update.first_error.as_deref(), Some("ERR injected failure"));
    assert_eq!(r.errors, read.errors + update.errors);

    // The whole command fails when anything failed.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::cli::YcsbArgs,
    }
    let args = Cli::try_parse_from(["x", "--redis", &redis.addr]).unwrap().args;
    let info = super::target_info(&args, &super::cpus::CpuPlan::new(&[0], 1, false, None, None), 1, redis.addr.clone());
    let err = super::finish(&args, shared.workload.clone(), info, &[load, run]).unwrap_err();
    assert!(err.to_string().contains("operation(s) failed"), "{err}");
}

#[test]
fn throttle_and_warmup_bound_what_is_measured() {
    let redis = FakeRedis::start();
    let shared = shared(&redis.addr, 100);
    // 2000 ops/s for a 1 s window after a 0.5 s warm-up: about 2000 measured operations,
    // never much more (the warm-up's 1000 are not counted).
    let run = run_phase(
        &shared,
        &client(Some(2000.0)),
        spec(Phase::Run, Duration::from_millis(500), Some(Duration::from_secs(1)), None),
    )
    .unwrap();
    let measured = run.stats.count() + run.stats.errors();
    // The throttle's promise is the ceiling; how close a loaded machine gets to it is a
    // benchmark figure, not something a test may assert (only that work was measured).
    assert!(measured <= 2200, "{measured} operations in 1 s at 2000/s");
    assert!(measured > 0, "nothing measured in 1 s at 2000/s");
    assert_eq!(run.elapsed, Duration::from_secs(1));
}

#[test]
fn an_unreachable_server_is_an_error_not_a_hang() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let shared = shared(&format!("127.0.0.1:{port}"), 10);
    let err = run_phase(&shared, &client(None), spec(Phase::Load, Duration::ZERO, None, None)).unwrap_err();
    assert!(err.to_string().contains("cannot connect to Redis"), "{err}");
}
