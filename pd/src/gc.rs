//! The MVCC GC safe point: the timestamp below which versions no read can see may be
//! removed. Persisted (synced) before it is acknowledged; it never moves back.

use std::cell::Cell;

use crate::error::{PdError, Result};
use crate::storage::{Storage, Write};

/// Where the safe point is kept in PD's storage.
pub const GC_SAFE_POINT: &[u8] = b"gc_safe_point";

/// The safe point, in memory and in storage.
pub struct GcSafePoint {
    value: Cell<u64>,
}

impl GcSafePoint {
    /// Reads the stored safe point (0 when none was ever set). Blocking: start-up only.
    pub fn load(storage: &Storage) -> Result<Self> {
        let value = match storage.get_blocking(GC_SAFE_POINT)? {
            None => 0,
            Some(v) => {
                let bytes: [u8; 8] =
                    v.as_slice().try_into().map_err(|_| PdError::Storage("bad value under gc_safe_point".into()))?;
                u64::from_be_bytes(bytes)
            }
        };
        Ok(GcSafePoint { value: Cell::new(value) })
    }

    /// The safe point.
    pub fn get(&self) -> u64 {
        self.value.get()
    }

    /// Moves the safe point up to `ts` (a lower `ts` leaves it) and returns where it is.
    pub async fn update(&self, storage: &Storage, ts: u64) -> Result<u64> {
        if ts > self.value.get() {
            storage.write(Write::synced().put_u64(GC_SAFE_POINT, ts)).await?;
            // Another update may have raised it while this one was being written.
            self.value.set(self.value.get().max(ts));
        }
        Ok(self.value.get())
    }
}
