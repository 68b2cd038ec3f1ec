//! A short process-chaos run (PD and 3 stores as processes; kill -9, SIGSTOP/SIGCONT and
//! restarts at random for `PERCORE_CHAOS_SECS`, default 20 s): the history must be
//! linearizable and every acknowledged append readable. `percore-chaos --duration 5m` runs
//! a long one.

use std::time::Duration;

use percore_tests::chaos::{self, ChaosConfig};

#[test]
fn processes_killed_paused_and_restarted_lose_nothing() {
    let secs = std::env::var("PERCORE_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed = std::env::var("PERCORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let cfg = ChaosConfig { duration: Duration::from_secs(secs), seed, ..ChaosConfig::default() };
    eprintln!("chaos: {cfg:?}");
    let r = chaos::run(&cfg).unwrap_or_else(|e| panic!("chaos run failed (seed {seed}): {e}"));
    eprintln!("faults: {:#?}", r.faults);
    eprintln!("{} register operations ({} unknown), {} appends; {}", r.ops, r.unknown, r.acked_appends, r.check);
    assert!(!r.faults.is_empty(), "no fault was injected");
    assert!(r.linearizable, "not linearizable (seed {seed}): {}", r.check);
}
