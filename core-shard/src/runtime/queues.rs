//! The task queues of a shard and how work is assigned to them.
//!
//! glommio divides CPU time between task queues in proportion to their shares, and a queue
//! whose latency matters makes the others yield more often. A shard has three:
//!
//! | queue | shares | latency | holds |
//! |---|---|---|---|
//! | `latency` | 1000 | matters (1 ms) | raft I/O, client requests, the log's writer |
//! | `apply` | 500 | matters (5 ms) | applying committed entries |
//! | `background` | 100 | not important | split check, snapshots, log GC, segment preallocation |

use std::future::Future;
use std::time::Duration;

use glommio::{Latency, Shares, Task, TaskQueueHandle};

/// Handles of a shard's task queues. `Copy`: pass it around freely inside the shard.
#[derive(Debug, Clone, Copy)]
pub struct TaskQueues {
    /// Raft I/O and client requests.
    pub latency: TaskQueueHandle,
    /// Applying committed entries.
    pub apply: TaskQueueHandle,
    /// Split check, snapshots, GC, preallocation.
    pub background: TaskQueueHandle,
}

impl TaskQueues {
    /// Creates the three queues on the current executor.
    pub fn create() -> Self {
        let ex = glommio::executor();
        TaskQueues {
            latency: ex.create_task_queue(Shares::Static(1000), Latency::Matters(Duration::from_millis(1)), "latency"),
            apply: ex.create_task_queue(Shares::Static(500), Latency::Matters(Duration::from_millis(5)), "apply"),
            background: ex.create_task_queue(Shares::Static(100), Latency::NotImportant, "background"),
        }
    }

    /// Spawns on the latency queue.
    pub fn spawn_latency<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> SpawnResult<T> {
        glommio::spawn_local_into(fut, self.latency)
    }

    /// Spawns on the apply queue.
    pub fn spawn_apply<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> SpawnResult<T> {
        glommio::spawn_local_into(fut, self.apply)
    }

    /// Spawns on the background queue.
    pub fn spawn_background<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> SpawnResult<T> {
        glommio::spawn_local_into(fut, self.background)
    }
}

/// What spawning into a queue returns: it fails only outside the executor that created the
/// queues.
pub type SpawnResult<T> = Result<Task<T>, glommio::GlommioError<()>>;
