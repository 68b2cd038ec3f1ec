//! The bank workload: accounts spread over several regions, concurrent transfer
//! transactions and read-only transactions that read every balance at one snapshot.
//!
//! Each balance is stored as `"<amount>@<writer>"` with a writer tag unique to the
//! transaction, and each transfer also writes a record `xfer-<writer>` in the same
//! transaction, so that after the run every transfer's fate is known — even one whose commit
//! outcome the client never learned — and every read names the transaction it read from.
//! [`verify`] then checks, with every process healthy:
//!
//! - every snapshot (and the final one) sums to the initial total;
//! - every transfer the client saw commit has its record, none it saw fail has one, and the
//!   final balances are the initial ones plus exactly the recorded transfers;
//! - the whole history of reads and writes is snapshot-isolated ([`crate::si`]).
//!
//! Used by the `bank` test (in-process cluster) and by process chaos (`percore-chaos
//! --workload bank`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use net::kv::{KvClient, TxnClient, TxnError};
use rand::{Rng, SeedableRng};

use crate::si::{self, Initial, SiReport, TxnOutcome, TxnRecord};

/// The workload's shape.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// Accounts.
    pub accounts: usize,
    /// Each account's initial balance.
    pub initial: i64,
    /// Concurrent transfer loops.
    pub transferers: usize,
    /// Concurrent snapshot readers.
    pub readers: usize,
    /// Seed of the transfers.
    pub seed: u64,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig { accounts: 20, initial: 100, transferers: 4, readers: 2, seed: 0 }
    }
}

/// The key of account `i`.
pub fn account(i: usize) -> Bytes {
    Bytes::from(format!("acct-{i:02}"))
}

const XFER_PREFIX: &str = "xfer-";
const XFER_END: &str = "xfer.";

fn amount_of(v: &Bytes) -> Option<i64> {
    std::str::from_utf8(v).ok()?.split('@').next()?.parse().ok()
}

/// A transfer attempt that wrote something: from, to, amount, how it ended.
#[derive(Debug, Clone)]
struct Transfer {
    tag: String,
    from: usize,
    to: usize,
    amount: i64,
    outcome: TxnOutcome,
}

/// What the clients did.
#[derive(Debug, Default)]
pub struct BankLog {
    history: Vec<TxnRecord>,
    transfers: Vec<Transfer>,
    /// Snapshots read.
    pub snapshots: u64,
    /// Snapshots that did not balance, described.
    pub bad_snapshots: Vec<String>,
    /// Attempts that failed with a retryable error.
    pub retried: u64,
    /// Attempts that failed otherwise (timeouts, unavailable stores or PD).
    pub failed: u64,
}

impl BankLog {
    /// Transfers the client saw commit.
    pub fn committed(&self) -> usize {
        self.transfers.iter().filter(|t| matches!(t.outcome, TxnOutcome::Committed(_))).count()
    }

    /// Transfers whose commit outcome the client did not learn.
    pub fn unknown(&self) -> usize {
        self.transfers.iter().filter(|t| matches!(t.outcome, TxnOutcome::Unknown(_))).count()
    }
}

/// The shared log of a run.
pub type SharedLog = Rc<RefCell<BankLog>>;

fn initial_value(cfg: &BankConfig) -> Bytes {
    Bytes::from(format!("{}@init", cfg.initial))
}

/// Splits the accounts into four regions (retrying while the cluster settles) and writes
/// the initial balances in one transaction.
pub async fn setup(kv: &KvClient, txn: &TxnClient, cfg: &BankConfig) -> Result<(), String> {
    for i in [cfg.accounts / 4, cfg.accounts / 2, 3 * cfg.accounts / 4] {
        let mut tries = 0;
        while let Err(e) = kv.split(account(i)).await {
            tries += 1;
            if tries >= 100 {
                return Err(format!("split at account {i}: {e}"));
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }
    for attempt in 0.. {
        let result = async {
            let mut t = txn.begin().await?;
            for i in 0..cfg.accounts {
                t.put(account(i), initial_value(cfg));
            }
            t.commit().await
        };
        match result.await {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 50 => return Err(format!("initial balances: {e}")),
            Err(_) => glommio::timer::sleep(Duration::from_millis(100)).await,
        }
    }
    unreachable!()
}

/// Runs the transfer loops and snapshot readers until `stop` is set.
pub async fn run(txn: &TxnClient, cfg: &BankConfig, stop: &Arc<AtomicBool>) -> SharedLog {
    let log = SharedLog::default();
    let mut tasks = Vec::new();
    for c in 0..cfg.transferers {
        let (txn, cfg, stop, log) = (txn.clone(), cfg.clone(), stop.clone(), log.clone());
        tasks.push(glommio::spawn_local(async move { transfer_loop(&txn, &cfg, c, &stop, &log).await }).detach());
    }
    for _ in 0..cfg.readers {
        let (txn, cfg, stop, log) = (txn.clone(), cfg.clone(), stop.clone(), log.clone());
        tasks.push(glommio::spawn_local(async move { read_loop(&txn, &cfg, &stop, &log).await }).detach());
    }
    for t in tasks {
        t.await;
    }
    log
}

async fn transfer_loop(txn: &TxnClient, cfg: &BankConfig, client: usize, stop: &AtomicBool, log: &SharedLog) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(client as u64));
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let tag = format!("c{client}-{seq}");
        let from = rng.gen_range(0..cfg.accounts);
        let to = (from + rng.gen_range(1..cfg.accounts)) % cfg.accounts;
        let amount = rng.gen_range(1..=10);
        let mut t = match txn.begin().await {
            Ok(t) => t,
            Err(_) => {
                log.borrow_mut().failed += 1;
                glommio::timer::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let mut record =
            TxnRecord { start_ts: t.start_ts(), outcome: TxnOutcome::Aborted, reads: vec![], writes: vec![] };
        let mut balances = Vec::new();
        for i in [from, to] {
            match t.get(account(i)).await {
                Ok(v) => {
                    balances.push(v.as_ref().and_then(amount_of).unwrap_or(0));
                    record.reads.push((account(i), v));
                }
                Err(_) => break,
            }
        }
        if balances.len() < 2 || balances[0] < amount {
            // A read failed, or nothing to move: its reads still had to be a snapshot.
            record.outcome = TxnOutcome::ReadOnly;
            let failed = balances.len() < 2;
            let mut l = log.borrow_mut();
            l.history.push(record);
            if failed {
                l.failed += 1;
            }
            continue;
        }
        let writes = [
            (account(from), Bytes::from(format!("{}@{tag}", balances[0] - amount))),
            (account(to), Bytes::from(format!("{}@{tag}", balances[1] + amount))),
            (Bytes::from(format!("{XFER_PREFIX}{tag}")), Bytes::from(format!("{from},{to},{amount}"))),
        ];
        for (k, v) in &writes {
            t.put(k.clone(), v.clone());
        }
        record.writes = writes.to_vec();
        let (outcome, retryable) = match t.commit().await {
            Ok(ts) => (TxnOutcome::Committed(ts), false),
            Err(TxnError::Undetermined { commit_ts, .. }) => (TxnOutcome::Unknown(commit_ts), false),
            Err(e) => (TxnOutcome::Aborted, e.is_retryable()),
        };
        record.outcome = outcome;
        let mut l = log.borrow_mut();
        match outcome {
            TxnOutcome::Aborted if retryable => l.retried += 1,
            TxnOutcome::Aborted | TxnOutcome::Unknown(_) => l.failed += 1,
            _ => {}
        }
        l.history.push(record);
        l.transfers.push(Transfer { tag, from, to, amount, outcome });
    }
}

/// Reads every account at one snapshot; records the reads, checks the sum.
async fn read_all(txn: &TxnClient, cfg: &BankConfig) -> Result<TxnRecord, TxnError> {
    let ts = txn.timestamp().await?;
    let pairs = txn.snapshot(ts).scan("acct-", "acct.", 0).await?;
    let found: HashMap<Bytes, Bytes> = pairs.into_iter().collect();
    let reads = (0..cfg.accounts).map(|i| (account(i), found.get(&account(i)).cloned())).collect();
    Ok(TxnRecord { start_ts: ts, outcome: TxnOutcome::ReadOnly, reads, writes: vec![] })
}

fn balance_problem(cfg: &BankConfig, r: &TxnRecord) -> Option<String> {
    let amounts: Vec<Option<i64>> = r.reads.iter().map(|(_, v)| v.as_ref().and_then(amount_of)).collect();
    let present = amounts.iter().flatten().count();
    let sum: i64 = amounts.iter().flatten().sum();
    let total = cfg.initial * cfg.accounts as i64;
    (present != cfg.accounts || sum != total)
        .then(|| format!("snapshot at {}: {present} accounts summing to {sum}, not {total}", r.start_ts))
}

async fn read_loop(txn: &TxnClient, cfg: &BankConfig, stop: &AtomicBool, log: &SharedLog) {
    while !stop.load(Ordering::SeqCst) {
        match read_all(txn, cfg).await {
            Ok(r) => {
                let mut l = log.borrow_mut();
                l.snapshots += 1;
                if let Some(p) = balance_problem(cfg, &r) {
                    l.bad_snapshots.push(p);
                }
                l.history.push(r);
            }
            Err(_) => glommio::timer::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// What [`verify`] found.
#[derive(Debug)]
pub struct BankReport {
    /// Transfers the clients saw commit.
    pub committed: usize,
    /// Transfers of unknown outcome.
    pub unknown: usize,
    /// Transfer records found at the end (committed ones, of either kind).
    pub recorded: usize,
    /// Snapshots read during the run.
    pub snapshots: u64,
    /// Attempts that failed with a retryable error (conflicts).
    pub retried: u64,
    /// Other failures.
    pub failed: u64,
    /// Invariant violations (bad snapshots, lost or doubled transfers, wrong final balances).
    pub violations: Vec<String>,
    /// The snapshot-isolation check of the whole history.
    pub si: SiReport,
}

impl BankReport {
    /// No invariant violated and the history snapshot-isolated.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.si.ok()
    }
}

impl std::fmt::Display for BankReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bank: {} transfers committed ({} more of unknown outcome, {} recorded at the end), {} snapshots, \
             {} retried, {} failed; {} invariant violations; {}",
            self.committed,
            self.unknown,
            self.recorded,
            self.snapshots,
            self.retried,
            self.failed,
            self.violations.len(),
            self.si
        )?;
        for v in self.violations.iter().take(10) {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Reads the final state (retrying until the cluster answers, up to `timeout`) and checks
/// the run's log against it.
pub async fn verify(
    txn: &TxnClient,
    cfg: &BankConfig,
    log: SharedLog,
    timeout: Duration,
) -> Result<BankReport, String> {
    let deadline = std::time::Instant::now() + timeout;
    let (last, records) = loop {
        let attempt = async {
            let r = read_all(txn, cfg).await?;
            let xfers = txn.snapshot(r.start_ts).scan(XFER_PREFIX, XFER_END, 0).await?;
            Ok::<_, TxnError>((r, xfers))
        };
        match attempt.await {
            Ok(v) => break v,
            Err(e) if std::time::Instant::now() > deadline => return Err(format!("final read: {e}")),
            Err(_) => glommio::timer::sleep(Duration::from_millis(200)).await,
        }
    };
    let mut log = Rc::try_unwrap(log).map_err(|_| "the clients still run".to_string())?.into_inner();
    let mut violations = std::mem::take(&mut log.bad_snapshots);
    violations.extend(balance_problem(cfg, &last));
    let recorded: HashMap<String, Bytes> =
        records.into_iter().map(|(k, v)| (String::from_utf8_lossy(&k[XFER_PREFIX.len()..]).into_owned(), v)).collect();
    let mut expected = vec![cfg.initial; cfg.accounts];
    let by_tag: HashMap<&str, &Transfer> = log.transfers.iter().map(|t| (t.tag.as_str(), t)).collect();
    for (tag, v) in &recorded {
        let Some(t) = by_tag.get(tag.as_str()) else {
            violations.push(format!("a transfer record no client wrote: {tag} = {v:?}"));
            continue;
        };
        if t.outcome == TxnOutcome::Aborted {
            violations.push(format!("transfer {tag} failed for its client but is recorded"));
        }
        expected[t.from] -= t.amount;
        expected[t.to] += t.amount;
    }
    for t in log.transfers.iter().filter(|t| matches!(t.outcome, TxnOutcome::Committed(_))) {
        if !recorded.contains_key(&t.tag) {
            violations.push(format!("transfer {} committed for its client but is not recorded", t.tag));
        }
    }
    let finals: Vec<i64> = last.reads.iter().map(|(_, v)| v.as_ref().and_then(amount_of).unwrap_or(-1)).collect();
    if finals != expected {
        violations.push(format!("final balances {finals:?} are not the recorded transfers' {expected:?}"));
    }
    log.history.push(last);
    let initial: Initial = (0..cfg.accounts).map(|i| (account(i), initial_value(cfg))).collect();
    let si = si::check(&log.history, &initial);
    Ok(BankReport {
        committed: log.committed(),
        unknown: log.unknown(),
        recorded: recorded.len(),
        snapshots: log.snapshots,
        retried: log.retried,
        failed: log.failed,
        violations,
        si,
    })
}
