//! The engine: appends, reads, compaction, purge, and the group-commit pipeline.
//!
//! ```text
//!  append() ──encode──▶ open batches ──writer──▶ write_at(segment, offset) ──▶ sync slot
//!     │ (sync: index updated, returns Durable)        (batch k+1 written while k syncs)
//!     ▼                                                                        │
//!  Durable ◀──────────── wake waiters ≤ k ◀──────── syncer: fdatasync ◀────────┘
//! ```
//!
//! * `append` is synchronous: it validates, encodes the record into the open batch, updates
//!   the index (so raft can read its own unpersisted entries) and returns a [`Durable`]
//!   future that completes once an fdatasync covering the record has completed.
//! * The **writer** task takes the oldest open batch — everything appended while the previous
//!   batch was being written — places it in the active segment, and writes it with one
//!   aligned O_DIRECT write. It then waits until the sync slot is free, i.e. until the
//!   previous batch is durable, and hands the batch over. So at most two batches are in
//!   flight (one syncing, one written), which recovery relies on.
//! * The **syncer** task fdatasyncs the batch in the slot and completes its waiters.
//! * The **preparer** task (background queue) keeps the next segment ready: a recycled file
//!   or a new zero-filled one.
//!
//! A failed write or fdatasync stops the engine (`LogError::Failed` from then on): after a
//! failed fdatasync the kernel may have dropped the dirty data, so retrying would lie.
//! Reopening the log recovers what is durable.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use glommio::io::DmaFile;
use glommio::TaskQueueHandle;

use super::error::{LogError, Result};
use super::format::{
    align_up, decode_body, parse_record, put_append, put_compact, put_remove, BatchHeader, Entry, HardState, Record,
    BATCH_HEADER, BLOCK, RECORD_HEADER,
};
use super::index::{EntryMeta, Index};
use super::recovery::{self, RecoveryReport};
use super::segments::{self, Segment, Segments};
use crate::notify::Notify;

/// Configuration of a log engine. Every field documents its default and bounds.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Size of a segment file. Default 64 MiB; a multiple of 4 KiB, at least 64 KiB. The
    /// largest single append is a little less than this.
    pub segment_size: u64,
    /// Bytes of entry data kept in memory for reads without I/O. Default 64 MiB.
    pub cache_bytes: usize,
    /// A batch is closed once it holds this many bytes. Default 4 MiB, at most
    /// `segment_size`.
    pub max_batch_bytes: usize,
    /// Purged segments kept for reuse. Default 4.
    pub recycle_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { segment_size: 64 << 20, cache_bytes: 64 << 20, max_batch_bytes: 4 << 20, recycle_segments: 4 }
    }
}

impl LogConfig {
    /// Checks the bounds above.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.segment_size < 64 << 10 || !self.segment_size.is_multiple_of(BLOCK as u64) {
            return Err(format!("segment-size {} must be a multiple of 4096 and at least 64 KiB", self.segment_size));
        }
        if self.max_batch_bytes < BLOCK || self.max_batch_bytes as u64 > self.segment_size {
            return Err(format!("max-batch-bytes {} must be between 4096 and segment-size", self.max_batch_bytes));
        }
        Ok(())
    }
}

/// Task queues the engine runs its tasks in.
#[derive(Debug, Clone, Copy)]
pub struct LogQueues {
    /// Writer and syncer (latency matters).
    pub foreground: TaskQueueHandle,
    /// Segment preparation.
    pub background: TaskQueueHandle,
}

impl LogQueues {
    /// Both on the current task queue.
    pub fn current() -> Self {
        let q = glommio::executor().current_task_queue();
        LogQueues { foreground: q, background: q }
    }
}

impl From<crate::runtime::TaskQueues> for LogQueues {
    fn from(q: crate::runtime::TaskQueues) -> Self {
        LogQueues { foreground: q.latency, background: q.background }
    }
}

/// Counters of an engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// `append` calls.
    pub appends: u64,
    /// Entries appended.
    pub entries: u64,
    /// Bytes of entry data appended.
    pub entry_bytes: u64,
    /// Batches written.
    pub batches: u64,
    /// Bytes written to segments (headers and padding included).
    pub bytes_written: u64,
    /// fdatasyncs completed.
    pub fsyncs: u64,
    /// Time spent in fdatasync, total.
    pub fsync_nanos: u64,
    /// Time spent in batch writes, total.
    pub write_nanos: u64,
    /// Segments deleted or recycled by purge.
    pub segments_purged: u64,
    /// Entries read from disk (cache misses).
    pub disk_reads: u64,
}

/// What a purge did and what holds it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Segments deleted or recycled.
    pub purged: Vec<u64>,
    /// Regions that keep the oldest remaining segment alive, with that segment: compact
    /// them (or re-append their hard state) so it can go.
    pub pinned: Vec<(u64, u64)>,
    /// Segments left, the active one included.
    pub segments: usize,
}

struct OpenBatch {
    seq: u64,
    buf: Vec<u8>,
    records: u32,
}

struct SyncJob {
    seq: u64,
    file: Rc<DmaFile>,
    path: PathBuf,
}

struct State {
    index: Index,
    open: VecDeque<OpenBatch>,
    next_batch: u64,
    durable: u64,
    failed: Option<LogError>,
    closing: bool,
    waiters: BTreeMap<u64, Vec<Waker>>,
    segs: Segments,
    next_segment: u64,
    ready: Option<Segment>,
    recycled: Vec<PathBuf>,
    prepare_error: Option<LogError>,
    sync_slot: Option<SyncJob>,
    writer_done: bool,
    tasks_running: u32,
    spare: Vec<Vec<u8>>,
    stats: LogStats,
}

impl State {
    fn fail(&mut self, err: LogError) {
        if self.failed.is_none() {
            tracing::error!(error = %err, "raft log failed; no further appends are accepted");
            self.failed = Some(err);
        }
        for w in std::mem::take(&mut self.waiters).into_values().flatten() {
            w.wake();
        }
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(LogError::Failed(e.to_string()));
        }
        if self.closing {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    /// The open batch a record of `size` bytes goes into: the newest, or a new one.
    fn batch_for(&mut self, size: usize, max_batch: usize) -> &mut OpenBatch {
        let need_new = match self.open.back() {
            None => true,
            Some(b) => b.records > 0 && b.buf.len() + size > max_batch,
        };
        if need_new {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.resize(BATCH_HEADER, 0);
            self.open.push_back(OpenBatch { seq: self.next_batch, buf, records: 0 });
            self.next_batch += 1;
        }
        self.open.back_mut().expect("pushed above")
    }
}

struct Shared {
    dir: PathBuf,
    config: LogConfig,
    st: RefCell<State>,
    wake_writer: Notify,
    wake_syncer: Notify,
    wake_preparer: Notify,
    tasks_done: Notify,
}

impl Shared {
    fn wake_all(&self) {
        self.wake_writer.notify_all();
        self.wake_syncer.notify_all();
        self.wake_preparer.notify_all();
        self.tasks_done.notify_all();
    }

    fn fail(&self, err: LogError) {
        self.st.borrow_mut().fail(err);
        self.wake_all();
    }
}

/// The raft log of one shard. Single-threaded: create and use it on one executor.
#[derive(Clone)]
pub struct LogEngine {
    sh: Rc<Shared>,
}

/// Completes when the record it was returned for is durable (or the log failed).
#[must_use = "an append is only durable when its Durable future completes"]
pub struct Durable {
    sh: Rc<Shared>,
    seq: u64,
}

impl Durable {
    /// The batch the record went into.
    pub fn batch(&self) -> u64 {
        self.seq
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.sh.st.borrow_mut();
        if st.durable >= self.seq {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &st.failed {
            return Poll::Ready(Err(LogError::Failed(e.to_string())));
        }
        st.waiters.entry(self.seq).or_default().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Encoded size of an append record.
fn append_size(entries: &[Entry], with_hs: bool) -> usize {
    RECORD_HEADER + 8 + 1 + if with_hs { 24 } else { 0 } + 12 + entries.iter().map(|e| 12 + e.data.len()).sum::<usize>()
}

impl LogEngine {
    /// Opens (creating if needed) the log in `dir`, recovers it, and starts its tasks.
    pub async fn open(dir: impl AsRef<Path>, config: LogConfig, queues: LogQueues) -> Result<(Self, RecoveryReport)> {
        let dir = dir.as_ref().to_path_buf();
        config.validate().map_err(|reason| LogError::NotALog { path: dir.clone(), reason })?;
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io("create dir", &dir, e))?;
        segments::open_ident(&dir).await?;
        let mut index = Index::new(config.cache_bytes);
        let mut rec = recovery::recover(&dir, &mut index).await?;
        let first = segments::prepare_segment(&dir, rec.next_segment, config.segment_size, rec.recycled.pop()).await?;
        let mut segs = rec.segments;
        segs.active = first.seq;
        segs.insert(first);
        let st = State {
            index,
            open: VecDeque::new(),
            next_batch: rec.next_batch,
            durable: rec.next_batch - 1,
            failed: None,
            closing: false,
            waiters: BTreeMap::new(),
            segs,
            next_segment: rec.next_segment + 1,
            ready: None,
            recycled: rec.recycled,
            prepare_error: None,
            sync_slot: None,
            writer_done: false,
            tasks_running: 3,
            spare: Vec::new(),
            stats: LogStats::default(),
        };
        let sh = Rc::new(Shared {
            dir,
            config,
            st: RefCell::new(st),
            wake_writer: Notify::new(),
            wake_syncer: Notify::new(),
            wake_preparer: Notify::new(),
            tasks_done: Notify::new(),
        });
        let spawn = |fut: Pin<Box<dyn Future<Output = ()>>>, q| {
            glommio::spawn_local_into(fut, q).map(|t| t.detach()).map_err(|e| LogError::io("spawn", sh.dir.clone(), e))
        };
        spawn(Box::pin(writer(sh.clone())), queues.foreground)?;
        spawn(Box::pin(syncer(sh.clone())), queues.foreground)?;
        spawn(Box::pin(preparer(sh.clone())), queues.background)?;
        Ok((LogEngine { sh }, rec.report))
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.sh.dir
    }

    /// Appends `entries` (contiguous; replacing any entries at and after the first one) and
    /// the hard state of `region`. Returns once the record is in the open batch; the returned
    /// future completes when it is durable. Entries are readable at once.
    pub fn append(&self, region: u64, entries: Vec<Entry>, hard_state: Option<HardState>) -> Result<Durable> {
        crate::crash_point!("log::append::before");
        let mut st = self.sh.st.borrow_mut();
        st.check_usable()?;
        for w in entries.windows(2) {
            if w[0].index.checked_add(1) != Some(w[1].index) {
                return Err(LogError::BadAppend {
                    region,
                    reason: format!("entries not contiguous: {} follows {}", w[1].index, w[0].index),
                });
            }
        }
        let first_index = entries.first().map_or(0, |e| e.index);
        if !entries.is_empty() {
            st.index.check_append(region, first_index).map_err(|reason| LogError::BadAppend { region, reason })?;
        }
        let size = append_size(&entries, hard_state.is_some());
        let max = self.sh.config.segment_size as usize - BATCH_HEADER;
        if size > max {
            return Err(LogError::TooLarge { size, max });
        }
        let batch = st.batch_for(size, self.sh.config.max_batch_bytes);
        let seq = batch.seq;
        let rec_off = batch.buf.len();
        put_append(&mut batch.buf, region, hard_state.as_ref(), &entries);
        batch.records += 1;
        let rec_len = (batch.buf.len() - rec_off) as u32;
        let metas = entries.iter().map(|e| EntryMeta {
            term: e.term,
            batch: seq,
            rec_off: rec_off as u32,
            rec_len,
            data: Some(e.data.clone()),
        });
        let hs = hard_state.map(|h| (h, seq));
        if let Err(reason) = st.index.apply_append(region, first_index, metas, hs, false) {
            // check_append passed above, so this cannot happen; fail loudly but safely.
            return Err(LogError::BadAppend { region, reason });
        }
        let mut bytes = 0;
        for e in &entries {
            st.index.cached_insert(region, e.index, seq, e.data.len());
            bytes += e.data.len() as u64;
        }
        st.stats.appends += 1;
        st.stats.entries += entries.len() as u64;
        st.stats.entry_bytes += bytes;
        if st.index.cached > st.index.budget {
            let durable = st.durable;
            st.index.evict(Some(durable));
        }
        drop(st);
        self.sh.wake_writer.notify_all();
        Ok(Durable { sh: self.sh.clone(), seq })
    }

    /// Drops the entries of `region` below `upto`. When `upto` is past the last entry the
    /// log of the region becomes empty and takes any next index (after a snapshot).
    pub fn compact(&self, region: u64, upto: u64) -> Result<Durable> {
        self.admin_record(RECORD_HEADER + 16, |index, buf| {
            let freed = index.regions.entry(region).or_default().compact(upto);
            index.cached_dropped(freed);
            put_compact(buf, region, upto);
        })
    }

    /// Drops `region` from the log entirely.
    pub fn remove(&self, region: u64) -> Result<Durable> {
        self.admin_record(RECORD_HEADER + 8, |index, buf| {
            if let Some(r) = index.regions.remove(&region) {
                index.cached_dropped(super::index::cached_bytes(r.entries.iter()));
            }
            put_remove(buf, region);
        })
    }

    /// Applies `f` to the index and lets it encode one record into the open batch.
    fn admin_record(&self, size: usize, f: impl FnOnce(&mut Index, &mut Vec<u8>)) -> Result<Durable> {
        let mut guard = self.sh.st.borrow_mut();
        guard.check_usable()?;
        let seq = guard.batch_for(size, self.sh.config.max_batch_bytes).seq;
        let State { index, open, .. } = &mut *guard;
        let batch = open.back_mut().expect("batch_for keeps one open");
        f(index, &mut batch.buf);
        batch.records += 1;
        drop(guard);
        self.sh.wake_writer.notify_all();
        Ok(Durable { sh: self.sh.clone(), seq })
    }

    /// Regions with a log (entries, a hard state, or a compaction mark).
    pub fn regions(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.sh.st.borrow().index.regions.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// First live index of `region` (`None` if the log does not have the region). For an
    /// empty log this is the index the next entry is expected at.
    pub fn first_index(&self, region: u64) -> Option<u64> {
        self.sh.st.borrow().index.regions.get(&region).map(|r| r.first)
    }

    /// Last index of `region` (`first_index - 1` when its log is empty).
    pub fn last_index(&self, region: u64) -> Option<u64> {
        self.sh.st.borrow().index.regions.get(&region).map(|r| r.last_index())
    }

    /// Approximate bytes of `region`'s live entries on disk (records counted once).
    pub fn region_bytes(&self, region: u64) -> u64 {
        let st = self.sh.st.borrow();
        let Some(r) = st.index.regions.get(&region) else { return 0 };
        let mut last = (u64::MAX, u32::MAX);
        let mut total = 0u64;
        for m in &r.entries {
            if (m.batch, m.rec_off) != last {
                total += m.rec_len as u64;
                last = (m.batch, m.rec_off);
            }
        }
        total
    }

    /// Number of live entries of `region` (0 if unknown).
    pub fn entry_count(&self, region: u64) -> usize {
        self.sh.st.borrow().index.regions.get(&region).map_or(0, |r| r.entries.len())
    }

    /// The latest hard state of `region`.
    pub fn hard_state(&self, region: u64) -> Option<HardState> {
        self.sh.st.borrow().index.regions.get(&region).and_then(|r| r.hard_state.map(|(h, _)| h))
    }

    /// Term of entry `index` of `region`.
    pub fn term(&self, region: u64, index: u64) -> Result<u64> {
        let st = self.sh.st.borrow();
        let r = st.index.regions.get(&region).ok_or(LogError::Unavailable { region, index })?;
        if index < r.first {
            return Err(LogError::Compacted { region, index, first: r.first });
        }
        r.get(index).map(|m| m.term).ok_or(LogError::Unavailable { region, index })
    }

    /// Entries `lo..hi` of `region` if all are in memory; `Ok(None)` if some must be read
    /// from disk. `max_bytes` limits the total size (at least one entry is returned).
    pub fn cached_entries(&self, region: u64, lo: u64, hi: u64, max_bytes: Option<u64>) -> Result<Option<Vec<Entry>>> {
        let st = self.sh.st.borrow();
        let metas = collect_metas(&st.index, region, lo, hi, max_bytes)?;
        let mut out = Vec::with_capacity(metas.len());
        for (index, m) in metas {
            match m.data {
                Some(data) => out.push(Entry { index, term: m.term, data }),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Entries `lo..hi` of `region`, reading from disk what is not cached. `max_bytes` limits
    /// the total size (at least one entry is returned).
    pub async fn entries(&self, region: u64, lo: u64, hi: u64, max_bytes: Option<u64>) -> Result<Vec<Entry>> {
        let metas = collect_metas(&self.sh.st.borrow().index, region, lo, hi, max_bytes)?;
        let mut out = Vec::with_capacity(metas.len());
        let mut i = 0;
        while i < metas.len() {
            let (index, m) = &metas[i];
            if let Some(data) = &m.data {
                out.push(Entry { index: *index, term: m.term, data: data.clone() });
                i += 1;
                continue;
            }
            // Read the record once for every consecutive entry it holds.
            let record = self.read_record(m.batch, m.rec_off, m.rec_len).await?;
            let (kind, body, _) = parse_record(&record).map_err(|e| self.read_corruption(m.batch, format!("{e:?}")))?;
            let Record::Append(a) =
                decode_body(kind, body).map_err(|e| self.read_corruption(m.batch, format!("{e:?}")))?
            else {
                return Err(self.read_corruption(m.batch, "not an append record".into()));
            };
            let (batch, rec_off) = (m.batch, m.rec_off);
            while i < metas.len() && metas[i].1.batch == batch && metas[i].1.rec_off == rec_off {
                let (index, m) = &metas[i];
                let pos = index.checked_sub(a.first_index).map(|p| p as usize);
                match pos.and_then(|p| a.entries.get(p)) {
                    Some(&(term, data)) if term == m.term => {
                        out.push(Entry { index: *index, term, data: bytes::Bytes::copy_from_slice(data) })
                    }
                    _ => return Err(self.read_corruption(batch, format!("entry {index} not in its record"))),
                }
                i += 1;
            }
            self.sh.st.borrow_mut().stats.disk_reads += 1;
        }
        // The log may have changed while we read: only return what is still current, and
        // cache what was read so that raft's retry after an async fetch hits memory.
        let mut st = self.sh.st.borrow_mut();
        let st = &mut *st;
        let r = st.index.regions.get_mut(&region).ok_or(LogError::Unavailable { region, index: lo })?;
        let mut recached = Vec::new();
        for e in &out {
            let first = r.first;
            let meta = e.index.checked_sub(first).and_then(|p| r.entries.get_mut(p as usize));
            match meta {
                Some(m) if m.term == e.term => {
                    if m.data.is_none() {
                        m.data = Some(e.data.clone());
                        recached.push((e.index, m.batch, e.data.len()));
                    }
                }
                _ => return Err(LogError::Unavailable { region, index: e.index }),
            }
        }
        for (index, batch, len) in recached {
            st.index.cached_insert(region, index, batch, len);
        }
        if st.index.cached > st.index.budget {
            let d = st.durable;
            st.index.evict(Some(d));
        }
        Ok(out)
    }

    /// [`LogEngine::entries`] for callers that cannot wait (raft-rs asks for committed
    /// entries synchronously): cache misses are read with a blocking `pread`. Rare — only
    /// entries evicted from the cache or never cached since a restart — and documented as
    /// the one place where the log may block its shard.
    pub fn entries_blocking(&self, region: u64, lo: u64, hi: u64, max_bytes: Option<u64>) -> Result<Vec<Entry>> {
        if let Some(v) = self.cached_entries(region, lo, hi, max_bytes)? {
            return Ok(v);
        }
        let metas = collect_metas(&self.sh.st.borrow().index, region, lo, hi, max_bytes)?;
        let mut out = Vec::with_capacity(metas.len());
        let mut current: Option<(u64, u32, Vec<u8>)> = None;
        for (index, m) in metas {
            if let Some(data) = m.data {
                out.push(Entry { index, term: m.term, data });
                continue;
            }
            let fresh = !matches!(&current, Some((b, o, _)) if *b == m.batch && *o == m.rec_off);
            if fresh {
                let (path, off) = {
                    let st = self.sh.st.borrow();
                    let (_, p, o) = st
                        .segs
                        .locate(m.batch)
                        .ok_or_else(|| LogError::Failed(format!("batch {} has no segment", m.batch)))?;
                    (p.to_path_buf(), o)
                };
                let mut buf = vec![0u8; m.rec_len as usize];
                let f = std::fs::File::open(&path).map_err(|e| LogError::io("open", &path, e))?;
                std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, off + m.rec_off as u64)
                    .map_err(|e| LogError::io("read", &path, e))?;
                current = Some((m.batch, m.rec_off, buf));
            }
            let record = &current.as_ref().expect("set above").2;
            out.push(self.entry_from_record(record, m.batch, index, m.term)?);
        }
        self.sh.st.borrow_mut().stats.disk_reads += 1;
        Ok(out)
    }

    fn entry_from_record(&self, record: &[u8], batch: u64, index: u64, term: u64) -> Result<Entry> {
        let (kind, body, _) = parse_record(record).map_err(|e| self.read_corruption(batch, format!("{e:?}")))?;
        let Record::Append(a) = decode_body(kind, body).map_err(|e| self.read_corruption(batch, format!("{e:?}")))?
        else {
            return Err(self.read_corruption(batch, "not an append record".into()));
        };
        match index.checked_sub(a.first_index).and_then(|p| a.entries.get(p as usize)) {
            Some(&(t, data)) if t == term => Ok(Entry { index, term, data: bytes::Bytes::copy_from_slice(data) }),
            _ => Err(self.read_corruption(batch, format!("entry {index} not in its record"))),
        }
    }

    async fn read_record(&self, batch: u64, rec_off: u32, rec_len: u32) -> Result<Vec<u8>> {
        let (file, path, off) = {
            let st = self.sh.st.borrow();
            let (f, p, o) =
                st.segs.locate(batch).ok_or_else(|| LogError::Failed(format!("batch {batch} has no segment")))?;
            (f, p.to_path_buf(), o)
        };
        let data =
            file.read_at(off + rec_off as u64, rec_len as usize).await.map_err(|e| LogError::io("read", &path, e))?;
        if data.len() < rec_len as usize {
            return Err(LogError::Corruption { file: path, offset: off + rec_off as u64, reason: "short read".into() });
        }
        Ok(data.to_vec())
    }

    fn read_corruption(&self, batch: u64, reason: String) -> LogError {
        let st = self.sh.st.borrow();
        match st.segs.locate(batch) {
            Some((_, p, off)) => LogError::Corruption { file: p.to_path_buf(), offset: off, reason },
            None => LogError::Failed(reason),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> LogStats {
        self.sh.st.borrow().stats
    }

    /// Deletes (or recycles) the oldest segments that no region needs any more.
    pub async fn purge(&self) -> Result<PurgeReport> {
        let (victims, pinned) = {
            let st = self.sh.st.borrow();
            st.check_usable()?;
            plan_purge(&st)
        };
        let mut report = PurgeReport { purged: Vec::new(), pinned, segments: 0 };
        if let Some(last) = victims.last() {
            let dir = self.sh.dir.clone();
            let watermark = last + 1;
            glommio::executor().spawn_blocking(move || segments::write_purged(&dir, watermark)).await?;
        }
        for seq in victims {
            let seg = self.sh.st.borrow_mut().segs.take(seq);
            let Some(seg) = seg else { continue };
            let keep = {
                let st = self.sh.st.borrow();
                st.recycled.len() < self.sh.config.recycle_segments
            };
            let recycled_path = self.sh.dir.join(format!("recycle-{seq}.rlog"));
            let res = if keep { seg.file.rename(&recycled_path).await } else { seg.file.remove().await };
            res.map_err(|e| LogError::io("purge", &seg.path, e))?;
            let _ = seg.file.close_rc().await;
            let mut st = self.sh.st.borrow_mut();
            if keep {
                st.recycled.push(recycled_path);
            }
            st.stats.segments_purged += 1;
            report.purged.push(seq);
        }
        {
            let mut st = self.sh.st.borrow_mut();
            st.prepare_error = None;
            report.segments = st.segs.by_seq.len();
        }
        self.sh.wake_preparer.notify_all();
        Ok(report)
    }

    /// Writes and syncs everything appended so far, stops the tasks and closes the files.
    /// Returns the failure that stopped the engine, if one did.
    pub async fn close(&self) -> Result<()> {
        self.sh.st.borrow_mut().closing = true;
        self.sh.wake_all();
        loop {
            let done = self.sh.tasks_done.notified();
            if self.sh.st.borrow().tasks_running == 0 {
                break;
            }
            done.await;
        }
        // Cut the active segment after its last batch, so that the stale bytes of a recycled
        // file are not mistaken for a torn tail at the next open.
        let cut = {
            let st = self.sh.st.borrow();
            let active = st.segs.by_seq.get(&st.segs.active).filter(|_| st.failed.is_none());
            active.map(|seg| (seg.file.clone(), seg.written, seg.path.clone()))
        };
        if let Some((file, written, path)) = cut {
            file.truncate(written).await.map_err(|e| LogError::io("truncate", &path, e))?;
            file.fdatasync().await.map_err(|e| LogError::io("fdatasync", &path, e))?;
        }
        let (files, ready, failed) = {
            let mut st = self.sh.st.borrow_mut();
            let seqs: Vec<u64> = st.segs.by_seq.keys().copied().collect();
            let files: Vec<Segment> = seqs.into_iter().filter_map(|s| st.segs.take(s)).collect();
            (files, st.ready.take(), st.failed.clone())
        };
        for seg in files {
            let _ = seg.file.close_rc().await;
        }
        if let Some(seg) = ready {
            // A prepared, never-used segment goes back to the recycle pool.
            let to = self.sh.dir.join(format!("recycle-{}.rlog", seg.seq));
            let _ = seg.file.rename(&to).await;
            let _ = seg.file.close_rc().await;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Segments that may go, and the regions pinning the oldest one that stays.
fn plan_purge(st: &State) -> (Vec<u64>, Vec<(u64, u64)>) {
    let needed = st.index.regions.values().filter_map(|r| r.oldest_batch()).min().unwrap_or(u64::MAX);
    let mut victims = Vec::new();
    let mut oldest_kept = None;
    for (&seq, seg) in &st.segs.by_seq {
        let free = seq != st.segs.active && seg.last_batch().is_none_or(|l| l < needed && l <= st.durable);
        if !free {
            oldest_kept = Some(seq);
            break;
        }
        victims.push(seq);
    }
    let mut pinned = Vec::new();
    if let Some(kept) = oldest_kept.filter(|&k| k != st.segs.active) {
        for (&region, r) in &st.index.regions {
            if let Some(b) = r.oldest_batch() {
                if st.segs.segment_of(b) == Some(kept) {
                    pinned.push((region, kept));
                }
            }
        }
        pinned.sort_unstable();
    }
    (victims, pinned)
}

/// Metas of `lo..hi` within `max_bytes`: `(index, meta)`.
fn collect_metas(
    index: &Index,
    region: u64,
    lo: u64,
    hi: u64,
    max_bytes: Option<u64>,
) -> Result<Vec<(u64, EntryMeta)>> {
    let r = index.regions.get(&region).ok_or(LogError::Unavailable { region, index: lo })?;
    if lo < r.first {
        return Err(LogError::Compacted { region, index: lo, first: r.first });
    }
    if hi > r.last_index().saturating_add(1) {
        return Err(LogError::Unavailable { region, index: hi - 1 });
    }
    let mut out = Vec::with_capacity((hi.saturating_sub(lo)) as usize);
    let mut size = 0u64;
    for i in lo..hi {
        let m = r.get(i).ok_or(LogError::Unavailable { region, index: i })?;
        size += m.rec_len as u64;
        if let Some(limit) = max_bytes {
            if !out.is_empty() && size > limit {
                break;
            }
        }
        out.push((i, m.clone()));
    }
    Ok(out)
}

/// Ends a task: counts it down and wakes `close`.
fn task_exit(sh: &Shared) {
    sh.st.borrow_mut().tasks_running -= 1;
    sh.wake_all();
}

/// The writer: one aligned write per batch, then hand-off to the syncer.
async fn writer(sh: Rc<Shared>) {
    'outer: loop {
        // Wait for a batch (or for the end).
        let mut batch = loop {
            let notified = sh.wake_writer.notified();
            {
                let mut st = sh.st.borrow_mut();
                if st.failed.is_some() {
                    break 'outer;
                }
                if let Some(b) = st.open.pop_front() {
                    break b;
                }
                if st.closing {
                    break 'outer;
                }
            }
            notified.await;
        };
        let len = align_up(batch.buf.len()) as u64;
        // Place it in the active segment, rotating when it is full.
        let (file, off, path, segment_seq) = loop {
            let notified = sh.wake_writer.notified();
            {
                let mut st = sh.st.borrow_mut();
                if st.failed.is_some() {
                    break 'outer;
                }
                let active = st.segs.active;
                if let Some((file, off)) = st.segs.place_in_active(batch.seq, len) {
                    let path = st.segs.by_seq.get(&active).map(|s| s.path.clone()).unwrap_or_default();
                    break (file, off, path, active);
                }
                if let Some(seg) = st.ready.take() {
                    st.segs.active = seg.seq;
                    st.segs.insert(seg);
                    drop(st);
                    sh.wake_preparer.notify_all();
                    continue;
                }
                if let Some(e) = st.prepare_error.clone() {
                    drop(st);
                    sh.fail(e);
                    break 'outer;
                }
            }
            notified.await;
        };
        let header = BatchHeader {
            batch_seq: batch.seq,
            segment_seq,
            records_len: (batch.buf.len() - BATCH_HEADER) as u32,
            records: batch.records,
        };
        header.write_into(&mut batch.buf);
        let mut dma = file.alloc_dma_buffer(len as usize);
        let bytes = dma.as_bytes_mut();
        bytes[..batch.buf.len()].copy_from_slice(&batch.buf);
        bytes[batch.buf.len()..].fill(0);
        sh.st.borrow_mut().spare.push(std::mem::take(&mut batch.buf));
        let t = Instant::now();
        if let Err(e) = file.write_at(dma, off).await {
            sh.fail(LogError::io("write", &path, e));
            break;
        }
        crate::crash_point!("log::write::after");
        {
            let mut st = sh.st.borrow_mut();
            st.stats.write_nanos += t.elapsed().as_nanos() as u64;
            st.stats.batches += 1;
            st.stats.bytes_written += len;
        }
        // Hand over once the previous batch is durable (keeps at most two in flight).
        let mut job = Some(SyncJob { seq: batch.seq, file, path });
        loop {
            let notified = sh.wake_writer.notified();
            {
                let mut st = sh.st.borrow_mut();
                if st.failed.is_some() {
                    break 'outer;
                }
                if st.sync_slot.is_none() {
                    st.sync_slot = job.take();
                    drop(st);
                    sh.wake_syncer.notify_all();
                    break;
                }
            }
            notified.await;
        }
    }
    sh.st.borrow_mut().writer_done = true;
    task_exit(&sh);
}

/// The syncer: fdatasync the batch in the slot, then complete its waiters.
async fn syncer(sh: Rc<Shared>) {
    loop {
        let job = loop {
            let notified = sh.wake_syncer.notified();
            let next = {
                let st = sh.st.borrow();
                if st.failed.is_some() {
                    None
                } else if let Some(j) = &st.sync_slot {
                    Some(Some(SyncJob { seq: j.seq, file: j.file.clone(), path: j.path.clone() }))
                } else if st.writer_done {
                    // The writer has exited and nothing is left to sync.
                    None
                } else {
                    Some(None)
                }
            };
            match next {
                None => return task_exit(&sh),
                Some(Some(job)) => break job,
                Some(None) => notified.await,
            }
        };
        let t = Instant::now();
        crate::crash_point!("log::fsync::before");
        if let Err(e) = job.file.fdatasync().await {
            sh.fail(LogError::io("fdatasync", &job.path, e));
            return task_exit(&sh);
        }
        crate::crash_point!("log::fsync::after");
        let waiters = {
            let mut st = sh.st.borrow_mut();
            st.stats.fsyncs += 1;
            st.stats.fsync_nanos += t.elapsed().as_nanos() as u64;
            st.durable = job.seq;
            st.sync_slot = None;
            let rest = st.waiters.split_off(&(job.seq + 1));
            let done = std::mem::replace(&mut st.waiters, rest);
            if st.index.cached > st.index.budget {
                let d = st.durable;
                st.index.evict(Some(d));
            }
            done
        };
        for w in waiters.into_values().flatten() {
            w.wake();
        }
        sh.wake_writer.notify_all();
    }
}

/// The preparer: keeps the next segment ready.
async fn preparer(sh: Rc<Shared>) {
    loop {
        let (seq, recycled) = loop {
            let notified = sh.wake_preparer.notified();
            let next = {
                let mut st = sh.st.borrow_mut();
                if st.failed.is_some() || st.closing {
                    None
                } else if st.ready.is_none() && st.prepare_error.is_none() {
                    let seq = st.next_segment;
                    st.next_segment += 1;
                    Some(Some((seq, st.recycled.pop())))
                } else {
                    Some(None)
                }
            };
            match next {
                None => return task_exit(&sh),
                Some(Some(job)) => break job,
                Some(None) => notified.await,
            }
        };
        match segments::prepare_segment(&sh.dir, seq, sh.config.segment_size, recycled).await {
            Ok(seg) => {
                let mut st = sh.st.borrow_mut();
                if st.closing {
                    // Too late to be used: leave it for the next open to recycle.
                    st.ready = Some(seg);
                    drop(st);
                    return task_exit(&sh);
                }
                st.ready = Some(seg);
            }
            Err(e) => {
                tracing::warn!(error = %e, "raft log: cannot prepare the next segment; will retry after a purge");
                sh.st.borrow_mut().prepare_error = Some(e);
            }
        }
        sh.wake_writer.notify_all();
    }
}
