//! `percore-ctl` commands for PD scheduling: `operators`, `operator add|cancel`,
//! `scheduler list|pause|resume|config`.

use clap::Subcommand;
use net::proto::pdpb::OperatorInfo;
use pd::PdClient;
use serde_json::{json, Value};

/// Operator commands.
#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Adds an operator by hand.
    Add {
        /// transfer-leader, add-peer, remove-peer or move-peer.
        kind: String,
        /// The region.
        #[arg(long)]
        region: u64,
        /// The target store (transfer-leader, add-peer, move-peer) or the store to remove from.
        #[arg(long)]
        store: u64,
        /// The source store of move-peer.
        #[arg(long, default_value_t = 0)]
        from_store: u64,
    },
    /// Cancels a region's operator.
    Cancel {
        /// The region.
        #[arg(long)]
        region: u64,
    },
}

/// Scheduler commands.
#[derive(Subcommand, Debug)]
pub enum SchedulerCommand {
    /// The schedulers and whether they run.
    List,
    /// Pauses a scheduler (persisted).
    Pause {
        /// replica-checker, balance-leader or balance-region.
        name: String,
    },
    /// Resumes a scheduler.
    Resume {
        /// The scheduler.
        name: String,
    },
    /// Shows the schedule configuration, setting `key=value` pairs first (persisted).
    Config {
        /// Settings to change, e.g. max-store-down-time-ms=60000.
        set: Vec<String>,
    },
}

fn op_json(o: &OperatorInfo) -> Value {
    json!({
        "id": o.id, "region_id": o.region_id, "source": o.source, "description": o.description,
        "steps": o.steps, "current_step": o.current_step, "status": o.status, "created_ms": o.created_ms,
    })
}

fn print_ops(ops: &[OperatorInfo], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(ops.iter().map(op_json).collect()));
        return;
    }
    println!("{:>5} {:>8} {:<16} {:<10} {:>5}  description / steps", "id", "region", "source", "status", "step");
    for o in ops {
        println!(
            "{:>5} {:>8} {:<16} {:<10} {:>5}  {}",
            o.id, o.region_id, o.source, o.status, o.current_step, o.description
        );
        for (i, s) in o.steps.iter().enumerate() {
            let mark = if (i as u32) < o.current_step {
                "done"
            } else if i as u32 == o.current_step {
                "now "
            } else {
                "    "
            };
            println!("{:>56}  [{mark}] {s}", "");
        }
    }
}

/// `operators`.
pub async fn list_operators(pd: &PdClient, all: bool, as_json: bool) -> Result<(), String> {
    let ops = pd.operators(all).await.map_err(|e| e.to_string())?;
    print_ops(&ops, as_json);
    Ok(())
}

/// `operator add|cancel`.
pub async fn operator(pd: &PdClient, cmd: OperatorCommand, as_json: bool) -> Result<(), String> {
    match cmd {
        OperatorCommand::Add { kind, region, store, from_store } => {
            let op = pd.add_operator(region, &kind, store, from_store).await.map_err(|e| e.to_string())?;
            print_ops(&[op], as_json);
        }
        OperatorCommand::Cancel { region } => {
            pd.cancel_operator(region).await.map_err(|e| e.to_string())?;
            println!("canceled");
        }
    }
    Ok(())
}

/// `scheduler ...`.
pub async fn scheduler(pd: &PdClient, cmd: SchedulerCommand, as_json: bool) -> Result<(), String> {
    let e = |e: pd::PdError| e.to_string();
    match cmd {
        SchedulerCommand::List => {
            let list = pd.schedulers().await.map_err(e)?;
            if as_json {
                let v: Vec<Value> = list
                    .iter()
                    .map(|s| json!({"name": s.name, "paused": s.paused, "description": s.description}))
                    .collect();
                println!("{}", Value::Array(v));
            } else {
                for s in list {
                    println!("{:<16} {:<8} {}", s.name, if s.paused { "paused" } else { "running" }, s.description);
                }
            }
        }
        SchedulerCommand::Pause { name } => {
            pd.pause_scheduler(&name, true).await.map_err(e)?;
            println!("{name} paused");
        }
        SchedulerCommand::Resume { name } => {
            pd.pause_scheduler(&name, false).await.map_err(e)?;
            println!("{name} resumed");
        }
        SchedulerCommand::Config { set } => {
            let mut pairs = Vec::new();
            for kv in set {
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("expected key=value, got {kv:?}"))?;
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
            let cfg = pd.schedule_config(pairs).await.map_err(e)?;
            if as_json {
                println!("{}", json!(cfg));
            } else {
                for (k, v) in cfg {
                    println!("{k:<26} {v}");
                }
            }
        }
    }
    Ok(())
}
