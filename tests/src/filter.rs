//! Transport filters for fault injection: every store of a harness cluster consults the
//! same filter before sending a raft message.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use net::proto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;
use raftstore::shared::TransportFilter;

#[derive(Default)]
struct Rules {
    drop_percent: u32,
    partitions: Vec<HashSet<u64>>,
    isolated: HashSet<u64>,
    /// `(region, destination store, message type)` of messages to drop.
    kinds: Vec<(u64, u64, MessageType)>,
}

/// Drop, partition and isolation rules shared by the stores of a cluster.
#[derive(Default)]
pub struct ClusterFilter {
    rules: Mutex<Rules>,
    rng: AtomicU64,
    /// Messages dropped so far.
    pub dropped: AtomicU64,
}

impl ClusterFilter {
    /// Drops about `percent`% of raft messages.
    pub fn drop_percent(&self, percent: u32) {
        self.rules.lock().unwrap().drop_percent = percent.min(100);
    }

    /// Splits stores into sets that cannot talk to each other (empty: no partition).
    pub fn partition(&self, sets: Vec<Vec<u64>>) {
        self.rules.lock().unwrap().partitions = sets.into_iter().map(|s| s.into_iter().collect()).collect();
    }

    /// Cuts one store off from every other.
    pub fn isolate(&self, store: u64) {
        self.rules.lock().unwrap().isolated.insert(store);
    }

    /// Drops the raft messages of `kind` for `region_id` sent to `to_store` — for example
    /// the append responses a new leader needs to commit its first entry.
    pub fn drop_kind(&self, region_id: u64, to_store: u64, kind: MessageType) {
        self.rules.lock().unwrap().kinds.push((region_id, to_store, kind));
    }

    /// Removes every rule.
    pub fn clear(&self) {
        *self.rules.lock().unwrap() = Rules::default();
    }

    fn random(&self) -> u64 {
        // xorshift; any decent spread will do for dropping messages.
        let mut x = self.rng.load(Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 30;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x
    }
}

impl TransportFilter for ClusterFilter {
    fn allow(&self, from: u64, to: u64, msg: &RaftMessage) -> bool {
        let r = self.rules.lock().unwrap();
        if r.isolated.contains(&from) || r.isolated.contains(&to) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if !r.partitions.is_empty() && !r.partitions.iter().any(|s| s.contains(&from) && s.contains(&to)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let kind = msg.message.as_ref().map_or(-1, |m| m.msg_type);
        if r.kinds.iter().any(|&(region, store, k)| region == msg.region_id && store == to && k as i32 == kind) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if r.drop_percent > 0 && self.random() % 100 < r.drop_percent as u64 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}
