//! The scenario matrix: TinyKV's generic raftstore tests, one test per combination (see
//! `percore_tests::scenario` for the options and the checks). `OnePartition` is scripted
//! (tests/tests/scripted.rs). The scenarios run one at a time (each is a 5-store cluster on
//! this process); `PERCORE_MATRIX_ROUNDS` / `PERCORE_MATRIX_ROUND_MS` lengthen them for soak runs.
//! Part of `make test`; `make test-matrix` runs only these.

use std::sync::Mutex;

use percore_tests::scenario::{self, Scenario};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(name: &str, s: Scenario) {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    scenario::run(name, s);
}

#[test]
fn basic() {
    run("basic", Scenario { clients: 1, ..Default::default() });
}

#[test]
fn concurrent() {
    run("concurrent", Scenario { clients: 5, ..Default::default() });
}

#[test]
fn unreliable() {
    run("unreliable", Scenario { clients: 5, unreliable: true, ..Default::default() });
}

#[test]
fn many_partitions_one_client() {
    run("many_partitions_one_client", Scenario { clients: 1, partitions: true, ..Default::default() });
}

#[test]
fn many_partitions_many_clients() {
    run("many_partitions_many_clients", Scenario { clients: 5, partitions: true, ..Default::default() });
}

#[test]
fn persist_one_client() {
    run("persist_one_client", Scenario { clients: 1, crash: true, ..Default::default() });
}

#[test]
fn persist_concurrent() {
    run("persist_concurrent", Scenario { clients: 5, crash: true, ..Default::default() });
}

#[test]
fn persist_concurrent_unreliable() {
    run("persist_concurrent_unreliable", Scenario { clients: 5, unreliable: true, crash: true, ..Default::default() });
}

#[test]
fn persist_partition() {
    run("persist_partition", Scenario { clients: 5, crash: true, partitions: true, ..Default::default() });
}

#[test]
fn persist_partition_unreliable() {
    run(
        "persist_partition_unreliable",
        Scenario { clients: 5, unreliable: true, crash: true, partitions: true, ..Default::default() },
    );
}

#[test]
fn snapshot_recover() {
    run("snapshot_recover", Scenario { clients: 1, crash: true, snapshot: true, ..Default::default() });
}

#[test]
fn snapshot_recover_many_clients() {
    run("snapshot_recover_many_clients", Scenario { clients: 20, crash: true, snapshot: true, ..Default::default() });
}

#[test]
fn snapshot_unreliable() {
    run("snapshot_unreliable", Scenario { clients: 5, unreliable: true, snapshot: true, ..Default::default() });
}

#[test]
fn snapshot_unreliable_recover() {
    run(
        "snapshot_unreliable_recover",
        Scenario { clients: 5, unreliable: true, crash: true, snapshot: true, ..Default::default() },
    );
}

#[test]
fn snapshot_unreliable_recover_concurrent_partition() {
    run(
        "snapshot_unreliable_recover_concurrent_partition",
        Scenario { clients: 5, unreliable: true, crash: true, partitions: true, snapshot: true, ..Default::default() },
    );
}

#[test]
fn conf_change_recover() {
    run("conf_change_recover", Scenario { clients: 1, crash: true, conf_change: true, ..Default::default() });
}

#[test]
fn conf_change_recover_many_clients() {
    run(
        "conf_change_recover_many_clients",
        Scenario { clients: 20, crash: true, conf_change: true, ..Default::default() },
    );
}

#[test]
fn conf_change_unreliable() {
    run("conf_change_unreliable", Scenario { clients: 5, unreliable: true, conf_change: true, ..Default::default() });
}

#[test]
fn conf_change_unreliable_recover() {
    run(
        "conf_change_unreliable_recover",
        Scenario { clients: 5, unreliable: true, crash: true, conf_change: true, ..Default::default() },
    );
}

#[test]
fn conf_change_snapshot_unreliable_recover() {
    run(
        "conf_change_snapshot_unreliable_recover",
        Scenario { clients: 5, unreliable: true, crash: true, snapshot: true, conf_change: true, ..Default::default() },
    );
}

#[test]
fn conf_change_snapshot_unreliable_recover_concurrent_partition() {
    run(
        "conf_change_snapshot_unreliable_recover_concurrent_partition",
        Scenario {
            clients: 5,
            unreliable: true,
            crash: true,
            partitions: true,
            snapshot: true,
            conf_change: true,
            ..Default::default()
        },
    );
}

#[test]
fn split_recover() {
    run("split_recover", Scenario { clients: 1, crash: true, split: true, ..Default::default() });
}

#[test]
fn split_recover_many_clients() {
    run("split_recover_many_clients", Scenario { clients: 20, crash: true, split: true, ..Default::default() });
}

#[test]
fn split_unreliable() {
    run("split_unreliable", Scenario { clients: 5, unreliable: true, split: true, ..Default::default() });
}

#[test]
fn split_unreliable_recover() {
    run(
        "split_unreliable_recover",
        Scenario { clients: 5, unreliable: true, crash: true, split: true, ..Default::default() },
    );
}

#[test]
fn split_conf_change_snapshot_unreliable_recover() {
    run(
        "split_conf_change_snapshot_unreliable_recover",
        Scenario {
            clients: 5,
            unreliable: true,
            crash: true,
            snapshot: true,
            conf_change: true,
            split: true,
            ..Default::default()
        },
    );
}

#[test]
fn split_conf_change_snapshot_unreliable_recover_concurrent_partition() {
    run(
        "split_conf_change_snapshot_unreliable_recover_concurrent_partition",
        Scenario {
            clients: 5,
            unreliable: true,
            crash: true,
            partitions: true,
            snapshot: true,
            conf_change: true,
            split: true,
        },
    );
}
