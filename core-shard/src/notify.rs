//! A single-threaded notification primitive for tasks of one shard.
//!
//! Tasks of a shard wait on a [`Notify`] and another task of the same shard wakes them all.
//! It is `Rc` + `RefCell` inside — never shared across threads — and costs one `Vec` push
//! per waiter. Cross-shard wake-ups go through channels ([`crate::mailbox`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    /// Bumped by every `notify_all`; a waiter is done once it sees a newer generation.
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

/// Wakes every task waiting on it. Cloning gives another handle to the same notifier.
#[derive(Clone, Default)]
pub struct Notify {
    inner: Rc<Inner>,
}

impl Notify {
    /// A notifier with no waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task currently waiting in [`Notify::notified`].
    pub fn notify_all(&self) {
        self.inner.generation.set(self.inner.generation.get().wrapping_add(1));
        for w in self.inner.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// A future that completes at the next `notify_all` after this call.
    pub fn notified(&self) -> Notified {
        Notified { inner: self.inner.clone(), generation: self.inner.generation.get() }
    }
}

/// The future returned by [`Notify::notified`].
pub struct Notified {
    inner: Rc<Inner>,
    generation: u64,
}

impl Future for Notified {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.generation.get() != self.generation {
            return Poll::Ready(());
        }
        // A future polled twice before a notification registers twice: a spurious extra
        // wake-up is cheaper than searching the list on every poll.
        self.inner.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}
