//! The tick service: one timer per shard drives every region on it.
//!
//! Raft needs a logical clock (`RawNode::tick`) at a fixed base interval. A timer per region
//! would cost one timer wheel entry and one wake-up per region per tick; instead every shard
//! runs a single periodic task that bumps a tick counter and wakes whoever waits, and the
//! shard's raft loop ticks all its regions in one pass. Ticks that the shard was too busy to
//! observe are not replayed one by one: [`TickService::wait`] returns how many elapsed, so a
//! caller can catch up (raft election timers must not run slow under load).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::{Task, TaskQueueHandle};

use crate::notify::Notify;

struct State {
    ticks: Cell<u64>,
    stopped: Cell<bool>,
    notify: Notify,
    interval: Duration,
}

/// A shard's tick clock. Cheap to clone; all clones share the one timer.
#[derive(Clone)]
pub struct TickService {
    state: Rc<State>,
}

impl TickService {
    /// Starts the timer task on the current executor, in the given task queue. The timer stops
    /// when [`TickService::stop`] is called. Fails only outside an executor or with an unknown
    /// queue.
    pub fn start(interval: Duration, queue: TaskQueueHandle) -> Result<Self, glommio::GlommioError<()>> {
        let state = Rc::new(State { ticks: Cell::new(0), stopped: Cell::new(false), notify: Notify::new(), interval });
        let s = state.clone();
        let timer = async move {
            let start = std::time::Instant::now();
            let mut next = 1u64;
            while !s.stopped.get() {
                // Sleep to the next multiple of the interval since start, so that the rate
                // does not drift with scheduling delay.
                let due = start + s.interval * next as u32;
                let now = std::time::Instant::now();
                if due > now {
                    glommio::timer::sleep(due - now).await;
                }
                let elapsed = (start.elapsed().as_nanos() / s.interval.as_nanos().max(1)) as u64;
                next = elapsed.max(next) + 1;
                s.ticks.set(elapsed.max(s.ticks.get() + 1));
                s.notify.notify_all();
            }
        };
        let task: Task<()> = glommio::spawn_local_into(timer, queue)?;
        task.detach();
        Ok(TickService { state })
    }

    /// The base tick interval.
    pub fn interval(&self) -> Duration {
        self.state.interval
    }

    /// Ticks elapsed since the service started.
    pub fn now(&self) -> u64 {
        self.state.ticks.get()
    }

    /// Waits for the next tick after `seen` and returns the current tick count; when the
    /// caller fell behind it returns at once (`returned - seen` ticks elapsed).
    /// Returns `None` once the service is stopped.
    pub async fn wait(&self, seen: u64) -> Option<u64> {
        loop {
            if self.state.stopped.get() {
                return None;
            }
            let now = self.state.ticks.get();
            if now > seen {
                return Some(now);
            }
            self.state.notify.notified().await;
        }
    }

    /// Stops the timer and releases every waiter with `None`.
    pub fn stop(&self) {
        self.state.stopped.set(true);
        self.state.notify.notify_all();
    }
}
