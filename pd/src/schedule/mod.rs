//! PD scheduling: operators created by schedulers, delivered to region leaders in heartbeat
//! responses, and tracked until done (the coordinator / scheduler / operator / controller
//! design of the placement driver).
//!
//! * [`config`]: knobs, persisted;
//! * [`filter`]: store views and health (down, disconnected, busy, nearly full);
//! * [`replica`]: the replica checker; [`balance`]: balance-leader and balance-region;
//! * [`operator`]: steps and their tracking; [`controller`]: running operators and limits;
//! * [`coordinator`]: the scheduling rounds and the scheduling RPCs.
//!
//! Every `schedule-interval` the coordinator runs the replica checker over every region and
//! the balance schedulers that are not paused; their plans become operators (PD allocates the
//! new peers' ids). A region's next heartbeat advances its operator and carries the step its
//! leader should take; store heartbeats carry the steps of every region the store leads.

pub mod balance;
pub mod config;
pub mod controller;
pub mod coordinator;
pub mod filter;
pub mod operator;
pub mod replica;

use operator::Step;

/// What a scheduler wants done to one region; new peers have id 0 until PD allocates one.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The region.
    pub region_id: u64,
    /// The scheduler that made it.
    pub source: &'static str,
    /// What it does.
    pub description: String,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Scheduler names, for `percore-ctl scheduler`.
pub const SCHEDULERS: [(&str, &str); 3] = [
    ("replica-checker", "keeps max-replicas live voters per region; replaces replicas on down stores"),
    ("balance-leader", "evens leader counts across stores"),
    ("balance-region", "evens region counts across stores"),
];
