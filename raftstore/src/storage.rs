//! `PeerStorage`: raft-rs's `Storage` over the shard's log engine and the region's apply
//! state.
//!
//! * Entries and the hard state live in the shard's raft log (`core_shard::log`); each raft
//!   entry is stored as `type:u8 | context_len:u32 | context | data` under its index/term.
//! * `RaftApplyState` (applied index, truncated index/term) lives in the shard's RocksDB,
//!   written in the same batch as the data it describes.
//! * Entries the log no longer caches are fetched asynchronously when raft allows it
//!   (`GetEntriesContext::can_async`), otherwise read with a blocking pread.
//! * Snapshots are generated in the background on request; until one is ready raft hears
//!   `SnapshotTemporarilyUnavailable` and asks again later.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use core_shard::log::{self, LogEngine, LogError};
use net::proto::metapb::{self, PeerRole};
use net::proto::raft_serverpb::{RaftApplyState, RaftTruncatedState};
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// The log position every region created by bootstrap or split starts from (TiKV's 5).
pub const INIT_INDEX: u64 = 5;
/// The term of [`INIT_INDEX`].
pub const INIT_TERM: u64 = 5;

/// The first byte of a framed entry: no protobuf message starts with it (its wire type
/// would be 7), so it tells a framed entry from a plain command.
const FRAMED: u8 = 0xff;

/// Encodes a raft entry into the log engine's form, taking its data without a copy.
///
/// A normal entry without context — a command, or a leader's empty entry — is stored as its
/// data alone: a `RaftCmdRequest` encoding (or nothing). Any other entry (a membership
/// change; an entry with context) is framed:
/// `0xff | type:u8 | context_len:u32 (big endian) | context | data`. Logs written before this
/// form framed every entry as `type:u8 | context_len:u32 | context | data`, with type 0, 1 or
/// 2 — bytes no protobuf message starts with either — and still decode.
pub fn encode_entry(e: Entry) -> log::Entry {
    let (index, term) = (e.index, e.term);
    if e.get_entry_type() == EntryType::EntryNormal && e.context.is_empty() {
        return log::Entry { index, term, data: Bytes::from(e.data) };
    }
    let mut b = BytesMut::with_capacity(6 + e.context.len() + e.data.len());
    b.put_u8(FRAMED);
    b.put_u8(e.entry_type as u8);
    b.put_u32(e.context.len() as u32);
    b.put_slice(&e.context);
    b.put_slice(&e.data);
    log::Entry { index, term, data: b.freeze() }
}

/// Replaces a region's raft log with one that starts after `truncated` and holds `entries`
/// and `hs` (a snapshot applied, a region handed over from another shard). Returns what to
/// await for it to be durable.
pub fn reset_log(
    log: &LogEngine,
    region_id: u64,
    truncated: u64,
    entries: Vec<log::Entry>,
    hs: &HardState,
) -> Result<log::Durable, LogError> {
    drop(log.remove(region_id)?);
    drop(log.compact(region_id, truncated + 1)?);
    let hs = log::HardState { term: hs.term, vote: hs.vote, commit: hs.commit };
    log.append(region_id, entries, Some(hs))
}

/// Decodes a log engine entry into a raft entry (see [`encode_entry`] for the forms).
pub fn decode_entry(e: &log::Entry) -> raft::Result<Entry> {
    let d: &Bytes = &e.data;
    let bad = || raft::Error::Store(StorageError::Other(format!("malformed log entry {}", e.index).into()));
    let mut out = Entry { index: e.index, term: e.term, ..Default::default() };
    let framed = match d.first() {
        Some(&FRAMED) => &d[1..],
        Some(0..=2) => &d[..],
        _ => {
            out.data = d.to_vec();
            return Ok(out);
        }
    };
    if framed.len() < 5 {
        return Err(bad());
    }
    let ctx_len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
    if framed.len() < 5 + ctx_len {
        return Err(bad());
    }
    let entry_type = match framed[0] {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => return Err(bad()),
    };
    out.set_entry_type(entry_type);
    out.context = framed[5..5 + ctx_len].to_vec();
    out.data = framed[5 + ctx_len..].to_vec();
    Ok(out)
}

/// The conf state a region's peer list describes.
pub fn conf_state_of(region: &metapb::Region) -> ConfState {
    let mut cs = ConfState::default();
    for p in &region.peers {
        if p.role == PeerRole::Learner as i32 {
            cs.learners.push(p.id);
        } else {
            cs.voters.push(p.id);
        }
    }
    cs
}

/// Where snapshot generation stands.
#[derive(Debug, Clone, Default)]
pub enum SnapState {
    /// Nothing requested.
    #[default]
    Idle,
    /// Raft asked; generation has not started.
    Requested,
    /// Being generated, of the region as it was at this epoch.
    Generating(metapb::RegionEpoch),
    /// Ready to send; it holds the region as it was at this epoch.
    Ready(Box<Snapshot>, metapb::RegionEpoch),
}

/// Entries raft asked for that must be read from disk first.
pub struct Fetch {
    /// First index.
    pub low: u64,
    /// One past the last index.
    pub high: u64,
    /// Size limit.
    pub max_size: Option<u64>,
    /// raft's context, handed back through `on_entries_fetched`.
    pub ctx: GetEntriesContext,
}

/// A region's raft storage on its shard.
pub struct PeerStorage {
    region_id: u64,
    log: LogEngine,
    region: metapb::Region,
    apply: RaftApplyState,
    snap: RefCell<SnapState>,
    fetches: RefCell<Vec<Fetch>>,
}

fn map_log_err(e: LogError) -> raft::Error {
    match e {
        LogError::Compacted { .. } => raft::Error::Store(StorageError::Compacted),
        LogError::Unavailable { .. } => raft::Error::Store(StorageError::Unavailable),
        other => raft::Error::Store(StorageError::Other(other.to_string().into())),
    }
}

impl PeerStorage {
    /// Storage for `region` with its apply state.
    pub fn new(log: LogEngine, region: metapb::Region, apply: RaftApplyState) -> Self {
        PeerStorage {
            region_id: region.id,
            log,
            region,
            apply,
            snap: RefCell::new(SnapState::Idle),
            fetches: RefCell::new(Vec::new()),
        }
    }

    /// The apply state of a region created by bootstrap or split.
    pub fn initial_apply_state() -> RaftApplyState {
        RaftApplyState {
            applied_index: INIT_INDEX,
            truncated_state: Some(RaftTruncatedState { index: INIT_INDEX, term: INIT_TERM }),
        }
    }

    /// The region.
    pub fn region(&self) -> &metapb::Region {
        &self.region
    }

    /// Replaces the region (after a conf change, split or snapshot).
    pub fn set_region(&mut self, region: metapb::Region) {
        self.region = region;
    }

    /// The apply state.
    pub fn apply_state(&self) -> &RaftApplyState {
        &self.apply
    }

    /// Mutable apply state (the apply path updates it together with its write batch).
    pub fn apply_state_mut(&mut self) -> &mut RaftApplyState {
        &mut self.apply
    }

    /// The applied index.
    pub fn applied_index(&self) -> u64 {
        self.apply.applied_index
    }

    /// The truncated index and term.
    pub fn truncated(&self) -> (u64, u64) {
        self.apply.truncated_state.as_ref().map_or((0, 0), |t| (t.index, t.term))
    }

    /// The shard's log.
    pub fn log(&self) -> &LogEngine {
        &self.log
    }

    /// Whether the region has data (an initialized peer) or waits for a snapshot.
    pub fn is_initialized(&self) -> bool {
        !self.region.peers.is_empty()
    }

    /// Asynchronous entry fetches raft asked for since the last call.
    pub fn take_fetches(&self) -> Vec<Fetch> {
        std::mem::take(&mut self.fetches.borrow_mut())
    }

    /// The snapshot state.
    pub fn snap_state(&self) -> std::cell::Ref<'_, SnapState> {
        self.snap.borrow()
    }

    /// Sets the snapshot state (generation started, finished, or dropped).
    pub fn set_snap_state(&self, s: SnapState) {
        *self.snap.borrow_mut() = s;
    }

    /// The hard state: the log's, or for a region without one, the initial state its apply
    /// state implies (a region created by split whose hard state was not persisted yet).
    ///
    /// The log's hard state may lag the apply state after a crash: one written by an
    /// uninitialized peer before a split created the region here, or by the peer before a
    /// snapshot whose data became durable but whose log reset did not. Everything up to the
    /// truncated index is known committed (it is in RocksDB), so the commit index (and the
    /// term, clearing a vote of an older term) is raised to it; and it is lowered to the last
    /// index the log holds.
    pub fn hard_state(&self) -> HardState {
        let (truncated, truncated_term) = self.truncated();
        match self.log.hard_state(self.region_id) {
            Some(h) => {
                // Never past the log's end either (a commit index learned by an earlier
                // incarnation of the peer whose entries this one does not have); raft learns
                // the real one from the leader, and the applied index stays below it.
                let commit = h.commit.min(self.last_index_inner()).max(truncated);
                let mut hs = HardState { term: h.term, vote: h.vote, commit };
                if hs.term < truncated_term {
                    hs.term = truncated_term;
                    hs.vote = 0;
                }
                hs
            }
            None => {
                let (_, term) = self.truncated();
                HardState { term, vote: 0, commit: self.apply.applied_index }
            }
        }
    }

    /// Maps a log error for raft. The log compacted past the truncated state is a broken
    /// invariant (raft-rs treats `Compacted` for committed entries as fatal): it is logged
    /// with the indexes that show it.
    fn log_err(&self, low: u64, e: LogError) -> raft::Error {
        if let LogError::Compacted { first, .. } = &e {
            tracing::error!(
                region_id = self.region_id,
                low,
                log_first = first,
                truncated = self.truncated().0,
                applied = self.apply.applied_index,
                "raft log compacted past the truncated state"
            );
        }
        map_log_err(e)
    }

    fn last_index_inner(&self) -> u64 {
        let (truncated, _) = self.truncated();
        let log_last =
            if self.log.entry_count(self.region_id) > 0 { self.log.last_index(self.region_id) } else { None };
        log_last.unwrap_or(0).max(truncated)
    }
}

impl raft::Storage for PeerStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState { hard_state: self.hard_state(), conf_state: conf_state_of(&self.region) })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into();
        let (truncated, _) = self.truncated();
        if low <= truncated {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index_inner() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let entries =
            match self.log.cached_entries(self.region_id, low, high, max_size).map_err(|e| self.log_err(low, e))? {
                Some(v) => v,
                None if context.can_async() => {
                    self.fetches.borrow_mut().push(Fetch { low, high, max_size, ctx: context });
                    return Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable));
                }
                None => {
                    self.log.entries_blocking(self.region_id, low, high, max_size).map_err(|e| self.log_err(low, e))?
                }
            };
        entries.iter().map(decode_entry).collect()
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (truncated, truncated_term) = self.truncated();
        if idx == truncated {
            return Ok(truncated_term);
        }
        if idx < truncated {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.log.term(self.region_id, idx).map_err(map_log_err)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated().0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index_inner())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let mut s = self.snap.borrow_mut();
        // A snapshot is only usable by peers in its configuration: one taken before `to` was
        // added would be refused by it.
        // It must also cover everything the log no longer has, or the follower cannot use it.
        // And it must hold the region as it is now: one taken before a split still spans the
        // split-off range, and a follower that already has the new region refuses it as
        // overlapping, every time it is resent.
        let truncated = self.truncated().0;
        let epoch = self.region.region_epoch.as_ref();
        let usable = |snap: &Snapshot, at: &metapb::RegionEpoch| {
            let cs = snap.metadata.as_ref().and_then(|m| m.conf_state.as_ref());
            snap.get_metadata().index >= request_index.max(truncated)
                && cs.is_some_and(|cs| cs.voters.contains(&to) || cs.learners.contains(&to))
                && epoch == Some(at)
        };
        match &*s {
            SnapState::Ready(snap, at) if usable(snap, at) => Ok((**snap).clone()),
            SnapState::Generating(_) | SnapState::Requested => {
                Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
            }
            _ => {
                *s = SnapState::Requested;
                Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_log_form() {
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryConfChange);
        e.index = 7;
        e.term = 3;
        e.context = b"ctx".to_vec();
        e.data = b"payload".to_vec();
        let framed = encode_entry(e.clone());
        assert_eq!(framed.data[0], FRAMED);
        assert_eq!(decode_entry(&framed).unwrap(), e);
        // A command is stored as it is; so is a leader's empty entry.
        let cmd = Entry { index: 8, term: 3, data: vec![0x0a, 0x02, 0x08, 0x01], ..Default::default() };
        let plain = encode_entry(cmd.clone());
        assert_eq!(&plain.data[..], &cmd.data[..]);
        assert_eq!(decode_entry(&plain).unwrap(), cmd);
        let empty = Entry { index: 9, term: 4, ..Default::default() };
        assert_eq!(decode_entry(&encode_entry(empty.clone())).unwrap(), empty);
        // The older form: every entry framed, without the marker.
        let old = log::Entry { index: 8, term: 3, data: Bytes::from_static(&[0, 0, 0, 0, 0, 0x0a, 0x02, 0x08, 0x01]) };
        assert_eq!(decode_entry(&old).unwrap(), cmd);
        let bad = log::Entry { index: 1, term: 1, data: Bytes::from_static(&[FRAMED, 9, 0, 0, 0, 0]) };
        assert!(decode_entry(&bad).is_err());
        let short = log::Entry { index: 1, term: 1, data: Bytes::from_static(&[0, 0, 0, 0, 9]) };
        assert!(decode_entry(&short).is_err());
    }
}
