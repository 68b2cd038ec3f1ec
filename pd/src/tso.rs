//! The timestamp oracle: `physical_ms << 18 | logical`, strictly increasing, across restarts.
//!
//! Timestamps are served from memory. Before any timestamp with physical part `p` is handed
//! out, a window end `w > p` has been persisted (synced): no timestamp at or above `w << 18`
//! was ever served. At start the physical part begins at `max(now, w)`, so a restart —
//! clean or `kill -9` — never goes back. The window is moved `SAVE_WINDOW` ahead whenever
//! the physical part comes within a second of its end, by the update loop that also advances
//! the physical part every `UPDATE_INTERVAL`. When the logical part of a millisecond runs
//! out, requests wait for the next millisecond.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use core_shard::notify::Notify;
use net::proto::pdpb::ErrorType;

use crate::error::{PdError, Result};
use crate::storage::{Storage, Write, TSO};

/// Bits of the logical part.
pub const LOGICAL_BITS: u32 = 18;
/// Logical values per millisecond.
pub const MAX_LOGICAL: u64 = 1 << LOGICAL_BITS;
/// How far ahead the window is persisted.
pub const SAVE_WINDOW: Duration = Duration::from_secs(3);
/// How often the physical part is advanced and the window checked.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);

/// Composes a timestamp.
pub fn compose(physical_ms: u64, logical: u64) -> u64 {
    (physical_ms << LOGICAL_BITS) | logical
}

/// Splits a timestamp into (physical ms, logical).
pub fn split(ts: u64) -> (u64, u64) {
    (ts >> LOGICAL_BITS, ts & (MAX_LOGICAL - 1))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The oracle. Shard-local.
pub struct Tso {
    physical: Cell<u64>,
    logical: Cell<u64>,
    /// The persisted window end (ms).
    saved: Cell<u64>,
    saving: Cell<bool>,
    saved_notify: Notify,
    storage: Storage,
}

impl Tso {
    /// Starts after everything a previous run may have served, and persists the first window
    /// (blocking: start-up only).
    pub fn start(storage: Storage, high_water_ms: u64) -> Result<Self> {
        let physical = now_ms().max(high_water_ms);
        let saved = physical + SAVE_WINDOW.as_millis() as u64;
        storage.write_blocking(Write::synced().put_u64(TSO, saved))?;
        Ok(Tso {
            physical: Cell::new(physical),
            logical: Cell::new(0),
            saved: Cell::new(saved),
            saving: Cell::new(false),
            saved_notify: Notify::new(),
            storage,
        })
    }

    /// The persisted window end (ms).
    pub fn high_water(&self) -> u64 {
        self.saved.get()
    }

    /// `count` consecutive timestamps; returns the last. The batch is
    /// `last - count + 1 ..= last`, all in the same millisecond.
    pub async fn get(&self, count: u32) -> Result<u64> {
        let count = count as u64;
        if count == 0 || count >= MAX_LOGICAL {
            return Err(PdError::server(
                ErrorType::InvalidArgument,
                format!("TSO count must be between 1 and {}", MAX_LOGICAL - 1),
            ));
        }
        loop {
            // Never serve at or past the persisted window.
            if self.physical.get() + 1 >= self.saved.get() {
                self.save_window().await?;
                continue;
            }
            let logical = self.logical.get();
            if logical + count < MAX_LOGICAL {
                self.logical.set(logical + count);
                return Ok(compose(self.physical.get(), logical + count - 1));
            }
            // This millisecond is used up: move to the next one, waiting for the clock if
            // it has not got there yet.
            let now = now_ms();
            if now > self.physical.get() {
                self.advance(now);
            } else {
                glommio::timer::sleep(Duration::from_micros(200)).await;
            }
        }
    }

    fn advance(&self, now: u64) {
        if now > self.physical.get() {
            self.physical.set(now);
            self.logical.set(0);
        }
    }

    /// One step of the update loop: advance the physical part to the clock, persist the
    /// window ahead when it is within a second.
    pub async fn tick(&self) -> Result<()> {
        let now = now_ms();
        if now < self.saved.get() {
            self.advance(now);
        }
        if self.physical.get() + 1000 >= self.saved.get() {
            self.save_window().await?;
            self.advance(now);
        }
        Ok(())
    }

    async fn save_window(&self) -> Result<()> {
        if self.saving.get() {
            let n = self.saved_notify.notified();
            if self.saving.get() {
                n.await;
            }
            return Ok(());
        }
        self.saving.set(true);
        let target = now_ms().max(self.physical.get()) + SAVE_WINDOW.as_millis() as u64;
        let res = self.storage.write(Write::synced().put_u64(TSO, target)).await;
        if res.is_ok() {
            self.saved.set(target.max(self.saved.get()));
        }
        self.saving.set(false);
        self.saved_notify.notify_all();
        res
    }
}
