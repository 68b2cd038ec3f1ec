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
