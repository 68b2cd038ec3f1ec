//! Crash points for the fault suite.
//!
//! [`crash_point!`](crate::crash_point) marks a place where a test may crash the process:
//! built with the `failpoints` feature and run with `FAILPOINTS="<name>=return"` (any `fail`
//! crate action list, e.g. `"<name>=10%return"` or `"<name>=3*off->return"`), the process
//! aborts there — no destructors, no flushing, like `kill -9` at that instruction. Without
//! the feature the points compile to nothing.
//!
//! The points, in the order data goes through them:
//!
//! | name | where |
//! |---|---|
//! | `log::append::before` | a raft-log append, before it is queued |
//! | `log::write::after` | a log batch written, not yet fdatasync'd |
//! | `log::fsync::before` | before the fdatasync of a batch |
//! | `log::fsync::after` | fdatasync done, appenders not yet told |
//! | `apply::write::before` | committed entries applied into a batch, not yet written to RocksDB |
//! | `apply::write::after` | the batch written, clients not yet answered |
//! | `snapshot::apply::before` | a received snapshot about to be written |
//! | `snapshot::apply::after_data` | its data durable, the raft log not yet reset |
//! | `split::apply::before` | a split command about to be applied |
//! | `split::apply::after` | the split written, the new region's peer not yet created |
//!
//! And one fault point, [`fault_point!`](crate::fault_point), which makes something fail the
//! way the real world can instead of crashing:
//!
//! | name | what |
//! |---|---|
//! | `engine::write::stall` | RocksDB refuses an apply write as during a write stall |

#[doc(hidden)]
pub use fail;

/// Aborts the process at crash point `name` (prints which, for the test's log).
pub fn crash(name: &str) -> ! {
    eprintln!("failpoint {name}: crashing");
    std::process::abort()
}

/// Marks a crash point (see the module docs); nothing unless built with `failpoints`.
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        $crate::failpoint::fail::fail_point!($name, |_| $crate::failpoint::crash($name))
    };
}

/// Whether fault point `name` fires now (see the module docs); always `false` unless built
/// with `failpoints`.
#[macro_export]
macro_rules! fault_point {
    ($name:literal) => {
        (|| {
            $crate::failpoint::fail::fail_point!($name, |_| true);
            false
        })()
    };
}
