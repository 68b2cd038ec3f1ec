//! The shard pool: placement errors, mailboxes under backpressure, ticks, graceful shutdown
//! with each shard's log synced and closed.

mod common;

use std::time::{Duration, Instant};

use core_shard::log::{Entry, LogEngine};
use core_shard::mailbox::MailboxConfig;
use core_shard::placement::{resolve_online, PlacementPolicy, ShardPlacement};
use core_shard::runtime::{PoolConfig, RuntimeError, ShardPool};

fn two_shards() -> ShardPlacement {
    resolve_online(Some(2), None, PlacementPolicy::Spread).unwrap()
}

#[test]
fn a_missing_cpu_is_an_error_not_a_panic() {
    let placement = ShardPlacement { cpus: vec![0, 100_000], oversubscribed: false };
    let r = ShardPool::<(), ()>::start(PoolConfig::new("bad", placement), |_shard| async {});
    match r {
        Err(RuntimeError::Placement(e)) => assert!(e.to_string().contains("100000"), "{e}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started a shard on a missing CPU"),
    }
}

#[derive(Debug)]
enum Msg {
    Data(u64),
    Done,
}

#[test]
fn mailboxes_deliver_in_order_under_backpressure() {
    const N: u64 = 20_000;
    let mut config = PoolConfig::new("mbox", two_shards());
    config.mailbox = MailboxConfig { capacity: 2, max_batch: 8 };
    let pool = ShardPool::<Msg, (u64, u64)>::start(config, |shard| async move {
        let other = 1 - shard.id;
        let outbox = shard.outbox.clone();
        let sender = glommio::spawn_local(async move {
            for i in 0..N {
                outbox.send(other, Msg::Data(i)).await.unwrap();
            }
            outbox.send(other, Msg::Done).await.unwrap();
            outbox.stats()
        });
        let mut expected = 0u64;
        let mut buf = Vec::new();
        let mut done = false;
        while !done {
            assert!(shard.inbox.recv_into(&mut buf).await, "inbox closed early");
            for m in buf.drain(..) {
                match m {
                    Msg::Data(i) => {
                        assert_eq!(i, expected, "shard {} got messages out of order", shard.id);
                        expected += 1;
                    }
                    Msg::Done => done = true,
                }
            }
            // A slow consumer: the sender must feel it.
            if expected % 512 < 8 {
                glommio::timer::sleep(Duration::from_micros(200)).await;
            }
        }
        let stats = sender.await;
        shard.outbox.flush().await;
        assert_eq!(stats.messages, N + 1);
        assert!(stats.batches < stats.messages, "messages were not batched: {stats:?}");
        (expected, stats.waits)
    })
    .unwrap();
    let results = pool.join();
    for r in results {
        let (received, waits) = r.unwrap();
        assert_eq!(received, N);
        assert!(waits > 0, "a 2-batch inbox and a slow consumer must push back on the sender");
    }
}

#[test]
fn one_timer_drives_ticks() {
    let mut config = PoolConfig::new("tick", two_shards());
    config.tick_interval = Duration::from_millis(10);
    let pool = ShardPool::<(), (u64, Duration)>::start(config, |shard| async move {
        let start = Instant::now();
        let mut seen = shard.ticks.now();
        let first = seen;
        // Many waiters on the one timer.
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let t = shard.ticks.clone();
                glommio::spawn_local(async move { t.wait(first).await })
            })
            .collect();
        while seen < first + 5 {
            seen = shard.ticks.wait(seen).await.unwrap();
        }
        for w in waiters {
            assert!(w.await.unwrap() > first);
        }
        (seen - first, start.elapsed())
    })
    .unwrap();
    for r in pool.join() {
        let (ticks, elapsed) = r.unwrap();
        assert!(ticks >= 5);
        assert!(elapsed >= Duration::from_millis(40), "5 ticks of 10 ms took {elapsed:?}");
    }
}

#[test]
fn shutdown_syncs_and_closes_every_shard_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let pool = ShardPool::<(), u64>::start(PoolConfig::new("stop", two_shards()), move |shard| {
        let root = root.clone();
        async move {
            let path = root.join(format!("shard-{}", shard.id));
            let (log, _) = LogEngine::open(&path, common::small_config(), shard.queues.into()).await.unwrap();
            let mut n = 0u64;
            // Append until shutdown; the last appends are never awaited here: close() must
            // make them durable.
            while n < 1000 || !shard.shutdown.is_fired() {
                n += 1;
                drop(log.append(1, vec![Entry { index: n, term: 1, data: "v".into() }], None).unwrap());
                if n.is_multiple_of(64) {
                    glommio::yield_if_needed().await;
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            }
            shard.shutdown.wait().await;
            log.close().await.unwrap();
            n
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    pool.shutdown();
    let counts: Vec<u64> = pool.join().into_iter().map(|r| r.unwrap()).collect();
    let root = dir.path().to_path_buf();
    common::run(move || async move {
        for (shard, n) in counts.into_iter().enumerate() {
            assert!(n > 0);
            let (log, _) = common::open(&root.join(format!("shard-{shard}")), &common::small_config()).await;
            assert_eq!(log.last_index(1), Some(n), "shard {shard} lost appends at shutdown");
            log.close().await.unwrap();
        }
    });
}
