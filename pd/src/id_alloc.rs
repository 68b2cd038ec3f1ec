//! The ID allocator: unique ids for stores, regions and peers.
//!
//! Ids are handed out from memory; the high-water mark is persisted (synced) in steps of
//! [`STEP`] *before* any id below it is handed out. After a crash the allocator starts from
//! the persisted mark, so an id is never handed out twice — at the price of skipping at most
//! one step.

use std::cell::Cell;

use core_shard::notify::Notify;

use crate::error::Result;
use crate::storage::{Storage, Write, ALLOC_ID};

/// Ids persisted per step.
pub const STEP: u64 = 1000;

/// The allocator. Shard-local.
pub struct IdAllocator {
    next: Cell<u64>,
    end: Cell<u64>,
    refilling: Cell<bool>,
    refilled: Notify,
    storage: Storage,
}

impl IdAllocator {
    /// Starts from the persisted high-water mark (ids start at 1).
    pub fn new(storage: Storage, high_water: u64) -> Self {
        let start = high_water.max(1);
        IdAllocator {
            next: Cell::new(start),
            end: Cell::new(start),
            refilling: Cell::new(false),
            refilled: Notify::new(),
            storage,
        }
    }

    /// The persisted high-water mark.
    pub fn high_water(&self) -> u64 {
        self.end.get()
    }

    /// A fresh id.
    pub async fn alloc(&self) -> Result<u64> {
        loop {
            let next = self.next.get();
            if next < self.end.get() {
                self.next.set(next + 1);
                return Ok(next);
            }
            if self.refilling.get() {
                let n = self.refilled.notified();
                if self.refilling.get() {
                    n.await;
                }
                continue;
            }
            self.refilling.set(true);
            let new_end = self.end.get() + STEP;
            let res = self.storage.write(Write::synced().put_u64(ALLOC_ID, new_end)).await;
            self.refilling.set(false);
            self.refilled.notify_all();
            res?;
            self.end.set(new_end);
        }
    }
}
