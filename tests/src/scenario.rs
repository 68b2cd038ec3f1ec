//! The scenario matrix of TinyKV's raftstore tests, on the in-process harness.
//!
//! Five stores hold every region (schedulers paused: the scenario alone decides membership).
//! Each client appends keys of its own prefix — `key(c, 0)`, `key(c, 1)`, … — retrying a
//! failed put of the same key and value until it is acknowledged, and every few puts scans its
//! prefix back: the scan must hold exactly the acknowledged keys, in order, each once, with
//! their values (plus, possibly, the one put whose outcome is still unknown). A run is a few
//! *rounds*; the options add faults during a round or between rounds:
//!
//! | option | fault |
//! |---|---|
//! | `unreliable` | about 10% of raft messages dropped |
//! | `partitions` | stores split into two random sets, re-drawn about every 0.5 s |
//! | `crash` | every store stopped and restarted from its disk between rounds |
//! | `snapshot` | tiny raft-log GC limit; after each round `applied − truncated` must be bounded on every peer |
//! | `conf_change` | a random add (as learner, promoted later) or remove of a peer every ≤ 200 ms |
//! | `split` | tiny split size (and 2 shards per store); the first region must have split |
//!
//! At the end every client's prefix is checked once more, and every replica of every region
//! must converge to the same applied index and data. Rounds and their length come from
//! `PERCORE_MATRIX_ROUNDS` (default 3) and `PERCORE_MATRIX_ROUND_MS` (default 1500); a soak
//! run raises them. `PERCORE_SEED` fixes the fault schedule's random seed (printed per run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::kv::{KvClient, KvConfig};
use net::proto::metapb::{Peer, PeerRole, Region};
use net::proto::raft_cmdpb::ConfChangeType;
use pd::PdClient;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::cluster::{self, Cluster};
use crate::filter::ClusterFilter;

/// Which faults a scenario injects; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scenario {
    /// Concurrent clients, each with its own key prefix.
    pub clients: usize,
    /// Drop about 10% of raft messages.
    pub unreliable: bool,
    /// Random two-way partitions, re-drawn about every 0.5 s.
    pub partitions: bool,
    /// Stop and restart every store between rounds.
    pub crash: bool,
    /// Tiny raft-log GC limits; bounded `applied − truncated` asserted.
    pub snapshot: bool,
    /// Random membership changes.
    pub conf_change: bool,
    /// Tiny split size; the first region must split.
    pub split: bool,
}

/// Stores in every scenario.
pub const STORES: usize = 5;
/// Raft-log GC count limit of the `snapshot` option.
const SNAPSHOT_GC_LIMIT: u64 = 10;
/// Largest `applied − truncated` accepted on a peer after a round with the `snapshot` option.
const SNAPSHOT_BOUND: u64 = 5 * SNAPSHOT_GC_LIMIT;

/// One client's progress, kept across rounds.
#[derive(Debug, Default, Clone, Copy)]
struct ClientLog {
    /// Keys `0..next` are acknowledged.
    next: usize,
    /// A put of key `next` failed: it may or may not have been applied.
    pending: bool,
    puts: usize,
    failed_puts: usize,
    scans: usize,
}

/// What a run did, for the test's output.
#[derive(Debug, Default)]
pub struct Summary {
    /// Acknowledged puts.
    pub puts: usize,
    /// Puts that failed (and were retried).
    pub failed_puts: usize,
    /// Scans checked.
    pub scans: usize,
    /// Membership changes that took effect.
    pub conf_changes: usize,
    /// Raft messages the filter dropped.
    pub dropped: u64,
    /// Regions at the end.
    pub regions: usize,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The value of client `c`'s `i`-th key.
fn value(c: usize, i: usize) -> Bytes {
    Bytes::from(format!("x {c} {i} y{}", ".".repeat(40)))
}

fn prefix_range(c: usize) -> (Bytes, Bytes) {
    (Bytes::from(format!("c{c:02}-")), Bytes::from(format!("c{c:02}.")))
}

/// Checks one client's scan: exactly keys `0..n` in order with their values, where `n` is
/// the acknowledged count, or one more when the last put's outcome is unknown.
pub fn check_prefix(c: usize, pairs: &[(Bytes, Bytes)], acked: usize, pending: bool) -> Result<(), String> {
    if pairs.len() != acked && !(pending && pairs.len() == acked + 1) {
        return Err(format!(
            "client {c}: scan returned {} keys, {acked} acknowledged{}",
            pairs.len(),
            if pending { " (+1 unknown)" } else { "" }
        ));
    }
    for (i, (k, v)) in pairs.iter().enumerate() {
        if *k != crate::workload::key(c, i) || *v != value(c, i) {
            return Err(format!("client {c}: position {i} holds {k:?} = {v:?}"));
        }
    }
    Ok(())
}

/// Runs `s`: starts 5 stores, replicates the first region to all, runs the rounds and the
/// final checks. Panics on any violation.
pub fn run(name: &str, s: Scenario) -> Summary {
    let rounds = env_or("PERCORE_MATRIX_ROUNDS", 3).max(1);
    let round = Duration::from_millis(env_or("PERCORE_MATRIX_ROUND_MS", 1500));
    let seed = env_or("PERCORE_SEED", rand::random::<u32>() as u64);
    let started = Instant::now();
    eprintln!("scenario {name}: {s:?}, {rounds} rounds of {round:?}, seed {seed}");
    let mut c = Cluster::start(STORES, if s.split { 2 } else { 1 }, |cfg| {
        if s.snapshot {
            cfg.raft.log_gc_count_limit = SNAPSHOT_GC_LIMIT;
            cfg.raft.log_gc_keep = 2;
            cfg.raft.log_gc_interval_ms = 50;
        }
        if s.split {
            cfg.split.region_split_size = 8 << 10;
            cfg.split.region_split_keys = 100;
        }
    });
    let ids: Vec<u64> = (0..STORES).map(|i| c.store_id(i)).collect();
    let pd_addr = c.pd_addr();
    let logs = Arc::new(Mutex::new(vec![ClientLog::default(); s.clients]));
    let conf_changes = Arc::new(Mutex::new(0usize));
    {
        let (pd_addr, ids) = (pd_addr.clone(), ids.clone());
        cluster::run(move || async move {
            let (pd, kv) = (cluster::pd_client(&pd_addr), cluster::kv_client(&pd_addr));
            cluster::replicate_all(&pd, &kv, &ids).await;
        });
    }
    let first_region = {
        let pd_addr = pd_addr.clone();
        cluster::run(move || async move { cluster::pd_client(&pd_addr).get_region(b"").await.expect("region").region })
    };
    for r in 0..rounds {
        let (pd_addr, ids, logs, filter, conf_changes) =
            (pd_addr.clone(), ids.clone(), logs.clone(), c.filter.clone(), conf_changes.clone());
        let round_seed = seed.wrapping_add(r);
        cluster::run(move || async move {
            run_round(&pd_addr, &ids, s, round, round_seed, &logs, &filter, &conf_changes).await;
            if s.snapshot {
                check_log_bounded(&pd_addr).await;
            }
        });
        if s.crash {
            for i in 0..STORES {
                c.stop(i);
            }
            for i in 0..STORES {
                c.restart(i);
            }
        }
    }
    let summary = {
        let (pd_addr, logs) = (pd_addr.clone(), logs.clone());
        cluster::run(move || async move { final_check(&pd_addr, &logs).await })
    };
    let summary = Summary {
        conf_changes: *conf_changes.lock().expect("lock"),
        dropped: c.filter.dropped.load(std::sync::atomic::Ordering::Relaxed),
        ..summary
    };
    if s.split {
        assert!(summary.regions > 1, "the first region ({first_region:?}) never split");
    }
    eprintln!("scenario {name}: {summary:?} in {:.1} s", started.elapsed().as_secs_f64());
    c.shutdown();
    summary
}

/// A client executor's KV client: a short deadline, so that a put stuck behind a partition
/// fails (and is retried) instead of outliving the round.
fn round_client(pd_addr: &str) -> KvClient {
    let mut cfg = KvConfig { deadline: Duration::from_secs(3), ..KvConfig::default() };
    cfg.conn.call_timeout = Duration::from_secs(1);
    KvClient::new(std::rc::Rc::new(cluster::pd_client(pd_addr)), cfg)
}

#[allow(clippy::too_many_arguments)]
async fn run_round(
    pd_addr: &str,
    ids: &[u64],
    s: Scenario,
    round: Duration,
    seed: u64,
    logs: &Arc<Mutex<Vec<ClientLog>>>,
    filter: &Arc<ClusterFilter>,
    conf_changes: &Arc<Mutex<usize>>,
) {
    let end = Instant::now() + round;
    if s.unreliable {
        filter.drop_percent(10);
    }
    let mut faults = Vec::new();
    if s.partitions {
        let (filter, ids) = (filter.clone(), ids.to_vec());
        faults.push(glommio::spawn_local(partitioner(filter, ids, end, seed)));
    }
    if s.conf_change {
        let (pd, kv, ids, n) = (cluster::pd_client(pd_addr), round_client(pd_addr), ids.to_vec(), conf_changes.clone());
        faults.push(glommio::spawn_local(async move {
            let done = conf_changer(&pd, &kv, &ids, end, seed).await;
            *n.lock().expect("lock") += done;
        }));
    }
    let kv = round_client(pd_addr);
    let mut clients = Vec::new();
    for cl in 0..s.clients {
        let (kv, logs, pd_addr) = (kv.clone(), logs.clone(), pd_addr.to_string());
        clients.push(glommio::spawn_local(async move { client(cl, &pd_addr, &kv, &logs, end).await }));
    }
    for f in faults {
        f.await;
    }
    if let Some(left) = end.checked_duration_since(Instant::now()) {
        glommio::timer::sleep(left).await;
    }
    // Heal before the clients finish their last operation.
    filter.clear();
    for t in clients {
        t.await;
    }
}

/// One client for one round: appends its keys and scans them back every few puts.
async fn client(c: usize, pd_addr: &str, kv: &KvClient, logs: &Arc<Mutex<Vec<ClientLog>>>, end: Instant) {
    let mut log = logs.lock().expect("lock")[c];
    while Instant::now() < end {
        let i = log.next;
        match kv.put(crate::workload::key(c, i), value(c, i)).await {
            Ok(()) => {
                log.next += 1;
                log.pending = false;
                log.puts += 1;
            }
            Err(_) => {
                log.pending = true;
                log.failed_puts += 1;
                glommio::timer::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        if log.next.is_multiple_of(5) {
            let (start, stop) = prefix_range(c);
            if let Ok(pairs) = kv.scan(start.clone(), stop.clone(), 0, false, false).await {
                log.scans += 1;
                if let Err(e) = check_prefix(c, &pairs, log.next, log.pending) {
                    panic!("{e}\n{}", diagnose(pd_addr, kv, c, &pairs, &start, &stop).await);
                }
            }
        }
    }
    logs.lock().expect("lock")[c] = log;
}

/// What the replicas hold right after a failed check: the scan once more, and every peer's
/// view of the region (role, term, indexes, keys) — whether data is missing or a stale
/// replica answered.
async fn diagnose(
    pd_addr: &str,
    kv: &KvClient,
    c: usize,
    got: &[(Bytes, Bytes)],
    start: &Bytes,
    stop: &Bytes,
) -> String {
    let have: std::collections::BTreeSet<&Bytes> = got.iter().map(|(k, _)| k).collect();
    let missing: Vec<usize> =
        (0..got.len() + 200).filter(|&i| !have.contains(&crate::workload::key(c, i))).take(5).collect();
    let mut out = format!("first missing positions: {missing:?}");
    out += &match kv.scan(start.clone(), stop.clone(), 0, false, false).await {
        Ok(p) => format!("\nthe same scan again: {} keys", p.len()),
        Err(e) => format!("\nthe same scan again failed: {e}"),
    };
    let pd = cluster::pd_client(pd_addr);
    let Ok(routes) = pd.scan_regions(start, stop, 0).await else { return out };
    for route in routes {
        out += &format!(
            "\nregion {} [{}, {}) {:?}, leader per PD {:?}",
            route.region.id,
            route.region.start_key.escape_ascii(),
            route.region.end_key.escape_ascii(),
            route.region.region_epoch,
            route.leader.as_ref().map(|l| l.store_id)
        );
        for (store, view) in cluster::replica_views(&pd, kv, &route.region).await {
            out += &match view {
                Some(v) => format!(
                    "\n  store {store} shard {}: leader {} term {} applied {} commit {} truncated {} last {} keys {} epoch {:?}",
                    v.shard, v.is_leader, v.term, v.applied_index, v.commit_index, v.truncated_index, v.last_index,
                    v.key_count, v.region.as_ref().and_then(|r| r.region_epoch.clone())
                ),
                None => format!("\n  store {store}: no view"),
            };
        }
    }
    out
}

/// Splits the stores into two random non-empty sets for 400-600 ms, heals for 0-200 ms, until `end`.
async fn partitioner(filter: Arc<ClusterFilter>, mut ids: Vec<u64>, end: Instant, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    while Instant::now() < end {
        ids.shuffle(&mut rng);
        let cut = rng.gen_range(1..ids.len());
        filter.partition(vec![ids[..cut].to_vec(), ids[cut..].to_vec()]);
        glommio::timer::sleep(Duration::from_millis(rng.gen_range(400..600))).await;
        filter.partition(Vec::new());
        glommio::timer::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
    }
}

/// Every ≤ 200 ms, on a random region and store: promotes a learner that has caught up,
/// removes a peer (while more than 3 voters remain) or adds a learner (while fewer than 5
/// peers). Decisions use the newest membership known — PD's, or the one the last change
/// returned when PD has not heard of it yet — so that two removals never race past the
/// 3-voter floor. Returns how many changes took effect.
async fn conf_changer(pd: &PdClient, kv: &KvClient, ids: &[u64], end: Instant, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc0f);
    let mut newest: std::collections::HashMap<u64, Region> = std::collections::HashMap::new();
    let mut done = 0;
    while Instant::now() < end {
        glommio::timer::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
        let Ok(regions) = pd.scan_regions(b"", b"", 0).await else { continue };
        let Some(r) = regions.choose(&mut rng) else { continue };
        let conf_ver = |r: &Region| r.region_epoch.as_ref().map_or(0, |e| e.conf_ver);
        let region = match newest.get(&r.region.id) {
            Some(mine) if conf_ver(mine) > conf_ver(&r.region) => mine.clone(),
            _ => r.region.clone(),
        };
        let store = ids[rng.gen_range(0..ids.len())];
        let voters = region.peers.iter().filter(|p| p.role == PeerRole::Voter as i32).count();
        let change = match region.peers.iter().find(|p| p.store_id == store) {
            Some(p) if p.role == PeerRole::Learner as i32 => {
                let views = cluster::replica_views(pd, kv, &region).await;
                let caught_up =
                    views.iter().any(|(s, v)| *s == store && v.as_ref().is_some_and(|v| v.applied_index > 5));
                caught_up.then(|| (ConfChangeType::AddNode, p.clone()))
            }
            Some(p) if voters > 3 => Some((ConfChangeType::RemoveNode, p.clone())),
            Some(_) => None,
            None if region.peers.len() < STORES => match pd.alloc_id().await {
                Ok(id) => {
                    Some((ConfChangeType::AddLearnerNode, Peer { id, store_id: store, role: PeerRole::Learner as i32 }))
                }
                Err(_) => None,
            },
            None => None,
        };
        let Some((change, peer)) = change else { continue };
        match kv.change_peer(region.id, change, peer).await {
            Ok(after) => {
                done += 1;
                newest.insert(after.id, after);
            }
            Err(e) => tracing::debug!("{change:?} in region {}: {e}", region.id),
        }
    }
    done
}

/// Every peer of every region: `applied − truncated` within [`SNAPSHOT_BOUND`] (waiting up
/// to 10 s for log GC to catch up after the round's writes).
async fn check_log_bounded(pd_addr: &str) {
    let (pd, kv) = (cluster::pd_client(pd_addr), cluster::kv_client(pd_addr));
    let start = Instant::now();
    loop {
        let mut worst = (0u64, String::new());
        let regions = pd.scan_regions(b"", b"", 0).await.expect("scan regions");
        for r in &regions {
            for (store, view) in cluster::replica_views(&pd, &kv, &r.region).await {
                if let Some(v) = view {
                    let lag = v.applied_index.saturating_sub(v.truncated_index);
                    if lag > worst.0 {
                        worst = (lag, format!("region {} on store {store}", r.region.id));
                    }
                }
            }
        }
        if worst.0 <= SNAPSHOT_BOUND {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "raft log not compacted: applied − truncated = {} on {} (bound {SNAPSHOT_BOUND})",
            worst.0,
            worst.1
        );
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Every client's keys, once more with no fault; then every replica converges.
async fn final_check(pd_addr: &str, logs: &Arc<Mutex<Vec<ClientLog>>>) -> Summary {
    let (pd, kv) = (cluster::pd_client(pd_addr), cluster::kv_client(pd_addr));
    let logs: Vec<ClientLog> = logs.lock().expect("lock").clone();
    let mut sum = Summary::default();
    for (c, log) in logs.iter().enumerate() {
        let (start, end) = prefix_range(c);
        let pairs =
            kv.scan(start, end, 0, false, false).await.unwrap_or_else(|e| panic!("final scan of client {c}: {e}"));
        if let Err(e) = check_prefix(c, &pairs, log.next, log.pending) {
            panic!("final check: {e}");
        }
        sum.puts += log.puts;
        sum.failed_puts += log.failed_puts;
        sum.scans += log.scans;
    }
    sum.regions = cluster::wait_replicas_converge(&pd, &kv, Duration::from_secs(60)).await;
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::key;

    fn pairs(c: usize, n: usize) -> Vec<(Bytes, Bytes)> {
        (0..n).map(|i| (key(c, i), value(c, i))).collect()
    }

    #[test]
    fn prefix_check_accepts_exactly_the_acknowledged_keys() {
        assert!(check_prefix(1, &pairs(1, 4), 4, false).is_ok());
        assert!(check_prefix(1, &pairs(1, 5), 4, true).is_ok(), "the unknown put may have applied");
        assert!(check_prefix(1, &pairs(1, 4), 4, true).is_ok(), "or not");
    }

    #[test]
    fn prefix_check_rejects_lost_extra_reordered_or_changed_keys() {
        assert!(check_prefix(1, &pairs(1, 3), 4, false).is_err(), "lost write");
        assert!(check_prefix(1, &pairs(1, 5), 4, false).is_err(), "write nobody made");
        let mut p = pairs(1, 4);
        p.swap(1, 2);
        assert!(check_prefix(1, &p, 4, false).is_err(), "out of order");
        let mut p = pairs(1, 4);
        p[2].1 = Bytes::from_static(b"other");
        assert!(check_prefix(1, &p, 4, false).is_err(), "changed value");
        let mut p = pairs(1, 4);
        p[3] = p[2].clone();
        assert!(check_prefix(1, &p, 4, false).is_err(), "duplicate");
    }
}
