//! Termination signals for processes built on the shard pool.
//!
//! Call [`block_termination_signals`] first thing in `main`, before the pool starts, so that
//! every thread inherits the mask; then [`wait_for_termination`] in the main thread returns
//! when SIGINT or SIGTERM arrives, and the process shuts its shards down gracefully.

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it creates later).
pub fn block_termination_signals() {
    // SAFETY: plain libc signal-mask calls on a zeroed, initialized sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT or SIGTERM (blocked by [`block_termination_signals`]); returns its number.
pub fn wait_for_termination() -> i32 {
    // SAFETY: as above; sigwait only writes the signal number.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}
