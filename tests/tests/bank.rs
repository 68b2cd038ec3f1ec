//! The bank test: 20 accounts over several regions of a 5-store cluster, concurrent
//! transfer transactions and read-only transactions that read every balance at one
//! snapshot. Every snapshot sums to the initial total, and at the end every committed
//! transfer is reflected exactly once (final balances = initial balances + the committed
//! transfers, replayed).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::kv::{TxnClient, TxnConfig, TxnError};
use percore_tests::cluster::{self, Cluster};
use rand::{Rng, SeedableRng};

const ACCOUNTS: usize = 20;
const INITIAL: i64 = 100;

fn account(i: usize) -> Bytes {
    Bytes::from(format!("acct-{i:02}"))
}

fn balance(v: &Bytes) -> i64 {
    std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).expect("a balance")
}

/// A committed transfer: from, to, amount.
type Transfer = (usize, usize, i64);

#[derive(Default)]
struct Tally {
    committed: Vec<Transfer>,
    retried: u64,
    snapshots: u64,
    bad_snapshots: Vec<String>,
}

async fn transfer_loop(txn: TxnClient, seed: u64, until: Instant, tally: Rc<RefCell<Tally>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    while Instant::now() < until {
        let from = rng.gen_range(0..ACCOUNTS);
        let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
        let amount = rng.gen_range(1..=10);
        let attempt = async {
            let mut t = txn.begin().await?;
            let a = t.get(account(from)).await?.map(|v| balance(&v)).unwrap_or(0);
            let b = t.get(account(to)).await?.map(|v| balance(&v)).unwrap_or(0);
            if a < amount {
                return Ok::<bool, TxnError>(false);
            }
            t.put(account(from), (a - amount).to_string());
            t.put(account(to), (b + amount).to_string());
            t.commit().await?;
            Ok(true)
        };
        match attempt.await {
            Ok(true) => tally.borrow_mut().committed.push((from, to, amount)),
            Ok(false) => {}
            Err(e) if e.is_retryable() => tally.borrow_mut().retried += 1,
            Err(e) => panic!("transfer {from} -> {to} failed: {e}"),
        }
    }
}

async fn read_loop(txn: TxnClient, until: Instant, tally: Rc<RefCell<Tally>>) {
    while Instant::now() < until {
        let ts = txn.timestamp().await.expect("a timestamp");
        let mut snap = txn.snapshot(ts);
        match snap.scan("acct-", "acct.", 0).await {
            Ok(pairs) => {
                let sum: i64 = pairs.iter().map(|(_, v)| balance(v)).sum();
                let mut t = tally.borrow_mut();
                t.snapshots += 1;
                if pairs.len() != ACCOUNTS || sum != INITIAL * ACCOUNTS as i64 {
                    t.bad_snapshots.push(format!("at {ts}: {} accounts summing to {sum}", pairs.len()));
                }
            }
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("snapshot read at {ts} failed: {e}"),
        }
    }
}

#[test]
fn every_snapshot_balances_and_every_committed_transfer_counts_once() {
    let c = Cluster::start(5, 1, |_| {});
    let pd_addr = c.pd_addr();
    let run_for =
        Duration::from_secs(std::env::var("PERCORE_BANK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10));
    let tally = cluster::run(move || async move {
        let pd = Rc::new(cluster::pd_client(&pd_addr));
        let kv = cluster::kv_client(&pd_addr);
        let txn = TxnClient::new(kv.clone(), pd.clone(), TxnConfig::default());
        // Three replicas of every region (PD's replica checker), then several regions.
        cluster::wait_until(Duration::from_secs(60), "3 replicas of the first region", || {
            let pd = pd.clone();
            async move { pd.get_region(b"").await.is_ok_and(|r| r.region.peers.len() >= 3) }
        })
        .await;
        for i in [5, 10, 15] {
            let mut tries = 0;
            while let Err(e) = kv.split(account(i)).await {
                tries += 1;
                assert!(tries < 50, "split at {i}: {e}");
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
        // The initial balances, in one transaction over every region.
        let mut t = txn.begin().await.unwrap();
        for i in 0..ACCOUNTS {
            t.put(account(i), INITIAL.to_string());
        }
        t.commit().await.expect("initial balances");

        let until = Instant::now() + run_for;
        let tally = Rc::new(RefCell::new(Tally::default()));
        let mut tasks = Vec::new();
        for w in 0..4 {
            tasks.push(glommio::spawn_local(transfer_loop(txn.clone(), w, until, tally.clone())).detach());
        }
        for _ in 0..2 {
            tasks.push(glommio::spawn_local(read_loop(txn.clone(), until, tally.clone())).detach());
        }
        for t in tasks {
            t.await;
        }

        // Every committed transfer, replayed on the initial balances, gives the final ones.
        let mut expected = vec![INITIAL; ACCOUNTS];
        for &(from, to, amount) in &tally.borrow().committed {
            expected[from] -= amount;
            expected[to] += amount;
        }
        let ts = txn.timestamp().await.unwrap();
        let finals = txn.snapshot(ts).scan("acct-", "acct.", 0).await.expect("final balances");
        let got: Vec<i64> = finals.iter().map(|(_, v)| balance(v)).collect();
        assert_eq!(got, expected, "final balances differ from the committed transfers");
        let regions = pd.scan_regions(b"", b"", 0).await.unwrap().len();
        (Rc::try_unwrap(tally).ok().expect("tasks done").into_inner(), regions)
    });
    println!(
        "bank: {} transfers committed, {} retried, {} snapshots, {} regions",
        tally.0.committed.len(),
        tally.0.retried,
        tally.0.snapshots,
        tally.1
    );
    assert!(tally.0.bad_snapshots.is_empty(), "snapshots that did not balance: {:?}", tally.0.bad_snapshots);
    assert!(tally.0.committed.len() > 20, "too few transfers committed to mean anything");
    assert!(tally.0.snapshots > 10, "too few snapshots read");
    assert!(tally.1 >= 4, "the accounts should span several regions");
    c.shutdown();
}
