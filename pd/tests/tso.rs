//! TSO: strictly increasing under concurrency, batched, logical overflow, bad counts.

mod common;

use net::proto::pdpb::ErrorType;
use pd::PdError;

#[test]
fn tso_is_strictly_increasing_over_concurrent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let history = common::concurrent_tso(&addr, 10, 1000).await;
        assert_eq!(history.len(), 10_000);
        common::assert_tso_linearizable(&history);
    });
    pd.stop();
}

#[test]
fn batches_overflow_and_bad_counts() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        // A batch of the largest size: the rest of the millisecond cannot hold the next one,
        // which therefore lands in a later millisecond.
        let max = (pd::tso::MAX_LOGICAL - 1) as u32;
        let a = c.get_ts_batch(max).await.unwrap();
        let b = c.get_ts_batch(max).await.unwrap();
        assert!(pd::tso::split(b).0 > pd::tso::split(a).0, "{a} {b}");
        assert!(b - (max as u64 - 1) > a, "batches must not overlap");
        // 0 timestamps, or more than a millisecond holds: refused.
        for bad in [0u32, pd::tso::MAX_LOGICAL as u32] {
            match c.get_ts_batch(bad).await {
                Err(PdError::Server { kind: ErrorType::InvalidArgument, .. }) => {}
                other => panic!("count {bad}: expected InvalidArgument, got {other:?}"),
            }
        }
        // Concurrent single requests share RPCs.
        let before = c.stats();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let c = c.clone();
                glommio::spawn_local(async move { c.get_ts().await.unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await);
        }
        let after = c.stats();
        assert!(
            after.tso_rpcs - before.tso_rpcs < 200,
            "requests were not batched: {} RPCs",
            after.tso_rpcs - before.tso_rpcs
        );
        // Callers get their timestamps in the order they asked.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    });
    pd.stop();
}
