//! The log's files: segments, the identity file, the purge watermark, recycled segments.
//!
//! ```text
//! raftlog/
//!   IDENT                       4 KiB: magic and format version (opened first: see below)
//!   PURGED                      4 KiB: every segment below this sequence is gone
//!   00000000000000000007.rlog   segments, preallocated to `segment_size`
//!   recycle-3.rlog              purged segments kept for reuse (their blocks are written,
//!                               so overwriting them needs no block allocation at fdatasync)
//! ```
//!
//! glommio 0.9 probes io_uring poll support with the first O_DIRECT file a process opens on
//! a device, and an empty file makes the probe wrongly succeed (later reads then fail with
//! EOPNOTSUPP). `IDENT` is never empty and is always the first file the engine opens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaFile, OpenOptions};

use super::error::{LogError, Result};
use super::format::BLOCK;

const IDENT_MAGIC: &[u8] = b"percore-raftlog v1\n";
const PURGED_MAGIC: &[u8] = b"percore-purged v1\n";

/// One segment file.
pub struct Segment {
    /// Sequence number (its file name).
    pub seq: u64,
    /// Full path.
    pub path: PathBuf,
    /// Open for reads and writes.
    pub file: Rc<DmaFile>,
    /// Bytes it can hold.
    pub capacity: u64,
    /// Bytes of batches written (the next batch's offset).
    pub written: u64,
    /// Sequence of its first batch, if it has any.
    pub first_batch: Option<u64>,
    /// File offset of each of its batches, from `first_batch` on.
    pub offsets: Vec<u64>,
}

impl Segment {
    /// The sequence of its last batch.
    pub fn last_batch(&self) -> Option<u64> {
        self.first_batch.map(|f| f + self.offsets.len() as u64 - 1)
    }

    /// Records that batch `seq` was placed at `offset` of this segment.
    pub fn place(&mut self, seq: u64, offset: u64, len: u64) {
        if self.first_batch.is_none() {
            self.first_batch = Some(seq);
        }
        self.offsets.push(offset);
        self.written = offset + len;
    }
}

/// The file name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.rlog")
}

/// What a directory listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Segment sequences, ascending.
    pub segments: Vec<u64>,
    /// Recycled segment files.
    pub recycled: Vec<PathBuf>,
}

/// Lists the log directory (blocking; only called while opening).
pub fn list(dir: &Path) -> Result<Listing> {
    let mut out = Listing::default();
    let rd = std::fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| LogError::io("list", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".rlog") {
            if stem.starts_with("recycle-") {
                out.recycled.push(ent.path());
            } else if let Ok(seq) = stem.parse::<u64>() {
                out.segments.push(seq);
            }
        }
    }
    out.segments.sort_unstable();
    out.recycled.sort();
    Ok(out)
}

/// Creates (first time) and checks the identity file, opening it with O_DIRECT before any
/// other file of the log — see the module docs.
pub async fn open_ident(dir: &Path) -> Result<()> {
    let path = dir.join("IDENT");
    if !path.exists() {
        let mut block = vec![0u8; BLOCK];
        block[..IDENT_MAGIC.len()].copy_from_slice(IDENT_MAGIC);
        write_small_file(dir, "IDENT", &block)?;
    }
    let file = DmaFile::open(&path).await.map_err(|e| LogError::io("open", &path, e))?;
    let data = file.read_at(0, BLOCK).await.map_err(|e| LogError::io("read", &path, e))?;
    let _ = file.close().await;
    if data.len() < IDENT_MAGIC.len() || &data[..IDENT_MAGIC.len()] != IDENT_MAGIC {
        return Err(LogError::NotALog { path, reason: "identity file has the wrong magic".into() });
    }
    Ok(())
}

/// Reads the purge watermark: every segment below it was purged.
pub fn read_purged(dir: &Path) -> Result<u64> {
    let path = dir.join("PURGED");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(LogError::io("read", &path, e)),
    };
    let n = PURGED_MAGIC.len();
    let bad = |reason: &str| LogError::Corruption { file: path.clone(), offset: 0, reason: reason.into() };
    if data.len() < n + 12 || &data[..n] != PURGED_MAGIC {
        return Err(bad("bad purge watermark file"));
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&data[n..n + 8]);
    let crc = u32::from_le_bytes([data[n + 8], data[n + 9], data[n + 10], data[n + 11]]);
    if crc32c::crc32c(&v) != crc {
        return Err(bad("purge watermark checksum mismatch"));
    }
    Ok(u64::from_le_bytes(v))
}

/// Durably records the purge watermark (write a temporary file, sync, rename, sync the
/// directory). Blocking, but small and only done by purges, which are rare.
pub fn write_purged(dir: &Path, watermark: u64) -> Result<()> {
    let mut block = Vec::with_capacity(64);
    block.extend_from_slice(PURGED_MAGIC);
    block.extend_from_slice(&watermark.to_le_bytes());
    block.extend_from_slice(&crc32c::crc32c(&watermark.to_le_bytes()).to_le_bytes());
    write_small_file(dir, "PURGED", &block)
}

fn write_small_file(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| LogError::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| LogError::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| LogError::io("fsync", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LogError::io("rename", &path, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LogError::io("fsync dir", dir, e))
}

/// [`sync_dir`] through the reactor, for use on a running shard.
pub async fn sync_dir_async(dir: &Path) -> Result<()> {
    let d = glommio::io::Directory::open(dir).await.map_err(|e| LogError::io("open dir", dir, e))?;
    d.sync().await.map_err(|e| LogError::io("fsync dir", dir, e))?;
    let _ = d.close().await;
    Ok(())
}

/// Opens an existing segment for reads and writes.
pub async fn open_segment(dir: &Path, seq: u64) -> Result<DmaFile> {
    let path = dir.join(segment_name(seq));
    OpenOptions::new().read(true).write(true).dma_open(&path).await.map_err(|e| LogError::io("open", &path, e))
}

/// Prepares segment `seq` of `capacity` bytes, ready to be written: reuses a recycled file
/// when there is one (its blocks are allocated and written), otherwise creates the file and
/// zero-fills it (so that overwrites need no extent conversion at fdatasync), then syncs the
/// directory.
pub async fn prepare_segment(dir: &Path, seq: u64, capacity: u64, recycled: Option<PathBuf>) -> Result<Segment> {
    let path = dir.join(segment_name(seq));
    let file = match recycled {
        Some(old) => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .dma_open(&old)
                .await
                .map_err(|e| LogError::io("open", &old, e))?;
            f.rename(&path).await.map_err(|e| LogError::io("rename", &old, e))?;
            let size = f.file_size().await.map_err(|e| LogError::io("stat", &path, e))?;
            if size < capacity {
                zero_fill(&f, &path, size / BLOCK as u64 * BLOCK as u64, capacity).await?;
            }
            f
        }
        None => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .dma_open(&path)
                .await
                .map_err(|e| LogError::io("create", &path, e))?;
            zero_fill(&f, &path, 0, capacity).await?;
            f
        }
    };
    sync_dir_async(dir).await?;
    Ok(Segment { seq, path, file: Rc::new(file), capacity, written: 0, first_batch: None, offsets: Vec::new() })
}

async fn zero_fill(f: &DmaFile, path: &Path, from: u64, to: u64) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut pos = from;
    while pos < to {
        let n = CHUNK.min(to - pos) as usize;
        let mut buf = f.alloc_dma_buffer(n);
        buf.as_bytes_mut().fill(0);
        f.write_at(buf, pos).await.map_err(|e| LogError::io("preallocate", path, e))?;
        pos += n as u64;
        glommio::yield_if_needed().await;
    }
    f.fdatasync().await.map_err(|e| LogError::io("fdatasync", path, e))
}

/// Reads a whole file into memory in chunks through the reactor.
pub async fn read_all(file: &DmaFile, path: &Path) -> Result<Vec<u8>> {
    const CHUNK: u64 = 4 << 20;
    let size = file.file_size().await.map_err(|e| LogError::io("stat", path, e))?;
    let mut out = Vec::with_capacity(size as usize);
    let mut pos = 0u64;
    while pos < size {
        let n = CHUNK.min(size - pos) as usize;
        let chunk = file.read_at(pos, n).await.map_err(|e| LogError::io("read", path, e))?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
        pos += chunk.len() as u64;
    }
    Ok(out)
}

/// Segments by sequence, and which segment holds which batch.
#[derive(Default)]
pub struct Segments {
    /// Every live segment, the active one included.
    pub by_seq: BTreeMap<u64, Segment>,
    /// The segment being written.
    pub active: u64,
    /// `first_batch → segment seq`, for segments with batches.
    by_first_batch: BTreeMap<u64, u64>,
}

impl Segments {
    /// Adds a segment (recovered or newly prepared).
    pub fn insert(&mut self, seg: Segment) {
        if let Some(fb) = seg.first_batch {
            self.by_first_batch.insert(fb, seg.seq);
        }
        self.by_seq.insert(seg.seq, seg);
    }

    /// Places batch `seq` of `len` bytes at the end of the active segment; `None` if it does
    /// not fit (rotate first).
    pub fn place_in_active(&mut self, seq: u64, len: u64) -> Option<(Rc<DmaFile>, u64)> {
        let seg = self.by_seq.get_mut(&self.active)?;
        if seg.written + len > seg.capacity {
            return None;
        }
        let off = seg.written;
        let first_batch_before = seg.first_batch;
        seg.place(seq, off, len);
        if first_batch_before.is_none() {
            self.by_first_batch.insert(seq, seg.seq);
        }
        Some((seg.file.clone(), off))
    }

    /// The file and offset of batch `seq`.
    pub fn locate(&self, batch: u64) -> Option<(Rc<DmaFile>, &Path, u64)> {
        let (&first, &seg_seq) = self.by_first_batch.range(..=batch).next_back()?;
        let seg = self.by_seq.get(&seg_seq)?;
        let off = *seg.offsets.get((batch - first) as usize)?;
        Some((seg.file.clone(), &seg.path, off))
    }

    /// The segment holding batch `seq`.
    pub fn segment_of(&self, batch: u64) -> Option<u64> {
        let (&first, &seg_seq) = self.by_first_batch.range(..=batch).next_back()?;
        let seg = self.by_seq.get(&seg_seq)?;
        ((batch - first) < seg.offsets.len() as u64).then_some(seg_seq)
    }

    /// Removes segment `seq` from the set (the caller deletes or recycles the file).
    pub fn take(&mut self, seq: u64) -> Option<Segment> {
        let seg = self.by_seq.remove(&seq)?;
        if let Some(fb) = seg.first_batch {
            self.by_first_batch.remove(&fb);
        }
        Some(seg)
    }
}
