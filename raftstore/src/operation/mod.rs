//! One file per command, each holding its whole life: propose (checks, encoding) → apply
//! (epoch check again, state change) → result (reply, side effects). The raftstore-v2
//! layout.

pub mod compact_log;
pub mod conf_change;
pub mod split;
pub mod transfer_leader;
pub mod write;
