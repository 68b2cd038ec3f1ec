//! `percore-ctl txn`: one-shot transactions (each command is one transaction with a start
//! timestamp from PD's TSO; writes commit with two-phase commit).

use std::rc::Rc;
use std::time::Duration;

use clap::Subcommand;
use net::kv::{KvClient, KvConfig, TxnClient, TxnConfig};
use pd::PdClient;
use serde_json::json;

use super::kv::say;
use super::{parse_key, show_key};

#[derive(Subcommand, Debug)]
pub enum TxnCommand {
    /// The value of a key at a new snapshot.
    Get {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
    /// Sets a key to a value in a transaction.
    Put {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
        /// The value (UTF-8; prefix with 0x for hex).
        value: String,
    },
    /// Deletes a key in a transaction.
    Delete {
        /// The key (UTF-8; prefix with 0x for hex).
        key: String,
    },
    /// Pairs in [start, end) at a new snapshot, in key order.
    Scan {
        /// First key (inclusive); default: the beginning.
        #[arg(long, default_value = "")]
        start: String,
        /// End key (exclusive); default: no end.
        #[arg(long, default_value = "")]
        end: String,
        /// At most this many pairs (0 = no limit).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// Runs one transactional command.
pub async fn run(pd: &PdClient, cmd: TxnCommand, json_out: bool) -> Result<(), String> {
    let config = KvConfig { deadline: Duration::from_secs(10), ..KvConfig::default() };
    let kv = KvClient::new(Rc::new(pd.clone()), config);
    let txn = TxnClient::new(kv, Rc::new(pd.clone()), TxnConfig::default());
    let e = |e: net::kv::TxnError| e.to_string();
    match cmd {
        TxnCommand::Get { key } => {
            let mut t = txn.begin().await.map_err(e)?;
            let value = t.get(parse_key(&key)?).await.map_err(e)?;
            let shown = value.as_deref().map(show_key);
            let v = json!({"key": key, "found": value.is_some(), "value": shown, "ts": t.start_ts()});
            say(json_out, v, || shown.clone().unwrap_or_else(|| "(not found)".into()));
        }
        TxnCommand::Put { key, value } => {
            let mut t = txn.begin().await.map_err(e)?;
            t.put(parse_key(&key)?, parse_key(&value)?);
            let commit_ts = t.commit().await.map_err(e)?;
            say(json_out, json!({"ok": true, "commit_ts": commit_ts}), || format!("OK (committed at {commit_ts})"));
        }
        TxnCommand::Delete { key } => {
            let mut t = txn.begin().await.map_err(e)?;
            t.delete(parse_key(&key)?);
            let commit_ts = t.commit().await.map_err(e)?;
            say(json_out, json!({"ok": true, "commit_ts": commit_ts}), || format!("OK (committed at {commit_ts})"));
        }
        TxnCommand::Scan { start, end, limit } => {
            let mut t = txn.begin().await.map_err(e)?;
            let pairs = t.scan(parse_key(&start)?, parse_key(&end)?, limit).await.map_err(e)?;
            if json_out {
                let rows: Vec<_> =
                    pairs.iter().map(|(k, v)| json!({"key": show_key(k), "value": show_key(v)})).collect();
                println!("{}", json!({"ts": t.start_ts(), "pairs": rows}));
            } else {
                for (k, v) in &pairs {
                    println!("{}\t{}", show_key(k), show_key(v));
                }
            }
        }
    }
    Ok(())
}

/// `percore-ctl gc`: shows the MVCC GC safe point and each store's GC progress, or — with
/// `--safe-point TS` or `--keep DURATION` — resolves the locks of transactions started
/// before the new safe point, then raises it (it never moves back).
pub async fn gc(pd: &PdClient, safe_point: Option<u64>, keep: Option<Duration>, json_out: bool) -> Result<(), String> {
    let target = match (safe_point, keep) {
        (Some(_), Some(_)) => return Err("give --safe-point or --keep, not both".into()),
        (Some(ts), None) => Some(ts),
        (None, Some(keep)) => {
            let now = pd.get_ts().await.map_err(|e| e.to_string())?;
            let keep_ms = keep.as_millis() as u64;
            Some(pd::tso::compose((now >> pd::tso::LOGICAL_BITS).saturating_sub(keep_ms), 0))
        }
        (None, None) => None,
    };
    let mut resolved = None;
    if let Some(ts) = target {
        let kv =
            KvClient::new(Rc::new(pd.clone()), KvConfig { deadline: Duration::from_secs(30), ..KvConfig::default() });
        let txn = TxnClient::new(kv, Rc::new(pd.clone()), TxnConfig::default());
        resolved = Some(txn.resolve_locks_before(ts).await.map_err(|e| e.to_string())?);
        pd.update_gc_safe_point(ts).await.map_err(|e| e.to_string())?;
    }
    let current = pd.get_gc_safe_point().await.map_err(|e| e.to_string())?;
    let stores = pd.get_all_stores().await.map_err(|e| e.to_string())?;
    if json_out {
        let rows: Vec<_> = stores
            .iter()
            .map(|(s, st)| json!({"store": s.id, "gc_safe_point": st.gc_safe_point, "versions_removed": st.gc_versions_removed}))
            .collect();
        println!("{}", json!({"safe_point": current, "locks_resolved": resolved, "stores": rows}));
        return Ok(());
    }
    if let Some(n) = resolved {
        println!("resolved {n} lock(s) of transactions started before {}", target.unwrap_or(0));
    }
    println!("GC safe point: {current}");
    println!("{:>8}  {:>20}  {:>16}", "store", "GC ran at", "versions removed");
    for (s, st) in &stores {
        println!("{:>8}  {:>20}  {:>16}", s.id, st.gc_safe_point, st.gc_versions_removed);
    }
    Ok(())
}

/// `percore-ctl mvcc KEY`: everything stored for a transactional key — its lock, its write
/// records newest first (kind, start and commit timestamps, inline value) and its long values.
pub async fn mvcc(pd: &PdClient, key: &str, json_out: bool) -> Result<(), String> {
    let config = KvConfig { deadline: Duration::from_secs(10), ..KvConfig::default() };
    let txn = TxnClient::new(KvClient::new(Rc::new(pd.clone()), config), Rc::new(pd.clone()), TxnConfig::default());
    let r = txn.mvcc(parse_key(key)?).await.map_err(|e| e.to_string())?;
    let lock = r.lock.as_ref().map(|l| {
        json!({"primary": show_key(&l.primary_lock), "start_ts": l.lock_version, "ttl_ms": l.lock_ttl,
               "kind": l.lock_type, "min_commit_ts": l.min_commit_ts})
    });
    let writes: Vec<_> = r
        .writes
        .iter()
        .map(|w| {
            json!({"commit_ts": w.commit_ts, "start_ts": w.start_ts, "kind": w.kind,
                   "short_value": w.has_short_value.then(|| show_key(&w.short_value)),
                   "overlapped_rollback": w.overlapped_rollback})
        })
        .collect();
    let values: Vec<_> = r.values.iter().map(|v| json!({"start_ts": v.start_ts, "bytes": v.value.len()})).collect();
    if json_out {
        println!("{}", json!({"key": key, "lock": lock, "writes": writes, "values": values}));
        return Ok(());
    }
    match &r.lock {
        Some(l) => println!(
            "lock: start_ts {} primary {} ttl {} ms min_commit_ts {}",
            l.lock_version,
            show_key(&l.primary_lock),
            l.lock_ttl,
            l.min_commit_ts
        ),
        None => println!("lock: none"),
    }
    println!("writes: {}", r.writes.len());
    for w in &r.writes {
        let value = if w.has_short_value { show_key(&w.short_value) } else { String::new() };
        let overlapped = if w.overlapped_rollback { " (+rollback)" } else { "" };
        println!("  {:>20}  {:<8}  start {:>20}  {value}{overlapped}", w.commit_ts, w.kind, w.start_ts);
    }
    println!("long values: {}", r.values.len());
    for v in &r.values {
        println!("  start {:>20}  {} bytes", v.start_ts, v.value.len());
    }
    Ok(())
}
