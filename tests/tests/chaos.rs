//! A short process-chaos run (PD and 3 stores as processes; kill -9, SIGSTOP/SIGCONT and
//! restarts at random for `PERCORE_CHAOS_SECS`, default 20 s): the history must be
//! linearizable and every acknowledged append readable; and the bank transactions on 5 stores
//! under the same faults. `percore-chaos --duration 5m [--workload bank]` runs a long one.

use std::time::Duration;

use percore_tests::chaos::{self, ChaosConfig, ChaosWorkload};

/// Runs chaos with `cfg` over `PERCORE_CHAOS_SECS` (default 20) and `PERCORE_SEED` (default
/// random, printed); asserts that faults were injected and every check passed.
fn run_and_check(cfg: ChaosConfig, what: &str) {
    let secs = std::env::var("PERCORE_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed = std::env::var("PERCORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let cfg = ChaosConfig { duration: Duration::from_secs(secs), seed, ..cfg };
    eprintln!("chaos: {cfg:?}");
    let r = chaos::run(&cfg).unwrap_or_else(|e| panic!("chaos run failed (seed {seed}): {e}"));
    eprintln!("faults: {:#?}", r.faults);
    eprintln!("{}", r.summary);
    assert!(!r.faults.is_empty(), "no fault was injected");
    assert!(r.ok, "{what} (seed {seed}): {}", r.summary);
}

#[test]
fn processes_killed_paused_and_restarted_lose_nothing() {
    run_and_check(ChaosConfig::default(), "not linearizable");
}

/// The bank workload on 5 store processes under the same faults: every snapshot balances,
/// every committed transfer counts once, the history is snapshot-isolated.
#[test]
fn bank_transactions_under_process_faults_keep_their_invariants() {
    let cfg = ChaosConfig { stores: 5, workload: ChaosWorkload::Bank, ..ChaosConfig::default() };
    run_and_check(cfg, "bank invariants or snapshot isolation violated");
}
