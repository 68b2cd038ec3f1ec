//! Where the store's regions live: every shard's copy of the region → shard directory, and
//! the coordinator's (shard 0's) key ranges of the store's initialized regions, which tell it
//! whether a message for an unknown region is for a split it has not applied yet — and the
//! vote requests it holds for such regions until the split creates them.
//!
//! Changes are told to every shard through the mailboxes (`ShardCtx::announce`,
//! `ShardCtx::report_range`); this module only keeps the maps.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use net::proto::raft_serverpb::RaftMessage;

/// A region's key range and version, as the coordinator knows it.
pub type Range = (Bytes, Bytes, u64);

/// Vote requests the coordinator holds for regions that splits will create.
pub const HELD_FOR_SPLIT: usize = 256;

/// A shard's view of where the store's regions are.
#[derive(Default)]
pub struct Directory {
    shards: RefCell<HashMap<u64, usize>>,
    ranges: RefCell<HashMap<u64, Range>>,
    /// Coordinator: vote requests for regions not created yet, oldest first.
    held_for_split: RefCell<VecDeque<RaftMessage>>,
}

impl Directory {
    /// The shard hosting `region_id`, if the store has it.
    pub fn shard_of(&self, region_id: u64) -> Option<usize> {
        self.shards.borrow().get(&region_id).copied()
    }

    /// Records where a region lives (`None`: gone from the store).
    pub fn set_shard(&self, region_id: u64, shard: Option<usize>) {
        let mut d = self.shards.borrow_mut();
        match shard {
            Some(s) => d.insert(region_id, s),
            None => d.remove(&region_id),
        };
    }

    /// Coordinator: records a region's range (`None`: it left the store).
    pub fn set_range(&self, region_id: u64, range: Option<Range>) {
        let mut r = self.ranges.borrow_mut();
        match range {
            Some(v) => r.insert(region_id, v),
            None => r.remove(&region_id),
        };
    }

    /// Coordinator: the initialized region other than `region_id` whose range overlaps
    /// `[start, end)`, if any.
    pub fn overlapping_region(&self, region_id: u64, start: &[u8], end: &[u8]) -> Option<u64> {
        self.ranges.borrow().iter().find_map(|(&id, (s, e, _))| {
            let overlap = (e.is_empty() || start < &e[..]) && (end.is_empty() || &s[..] < end);
            (id != region_id && overlap).then_some(id)
        })
    }
}

impl Directory {
    /// Coordinator: keeps a vote request for a region a split will create here (dropping the
    /// oldest past [`HELD_FOR_SPLIT`]).
    pub fn hold_for_split(&self, m: RaftMessage) {
        let mut held = self.held_for_split.borrow_mut();
        if held.len() >= HELD_FOR_SPLIT {
            held.pop_front();
        }
        held.push_back(m);
    }

    /// Coordinator: the held messages of `region_id` (its split was applied here).
    pub fn take_held_for_split(&self, region_id: u64) -> Vec<RaftMessage> {
        let mut held = self.held_for_split.borrow_mut();
        let (theirs, rest): (Vec<_>, Vec<_>) = held.drain(..).partition(|m| m.region_id == region_id);
        held.extend(rest);
        theirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_overlap_only_other_regions() {
        let d = Directory::default();
        d.set_range(1, Some((Bytes::from("a"), Bytes::from("m"), 1)));
        d.set_range(2, Some((Bytes::from("m"), Bytes::new(), 1)));
        assert_eq!(d.overlapping_region(3, b"b", b"c"), Some(1));
        assert_eq!(d.overlapping_region(1, b"b", b"c"), None, "a region does not overlap itself");
        assert_eq!(d.overlapping_region(3, b"x", b""), Some(2));
        assert_eq!(d.overlapping_region(3, b"", b"a"), None);
        d.set_range(2, None);
        assert_eq!(d.overlapping_region(3, b"x", b""), None);
        d.set_shard(7, Some(1));
        assert_eq!(d.shard_of(7), Some(1));
        d.set_shard(7, None);
        assert_eq!(d.shard_of(7), None);
    }
}
