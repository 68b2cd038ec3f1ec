//! Helpers shared by the core-shard integration tests.
#![allow(dead_code)]

use std::future::Future;

use core_shard::log::{LogConfig, LogEngine, LogQueues, RecoveryReport};

/// Runs `f` on a fresh glommio executor and returns its output.
pub fn run<T: Send + 'static, F: Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
    glommio::LocalExecutorBuilder::default().io_memory(1 << 20).spawn(f).expect("executor").join().expect("join")
}

/// A small-segment configuration so that tests rotate and purge often.
pub fn small_config() -> LogConfig {
    LogConfig { segment_size: 64 << 10, cache_bytes: 16 << 10, max_batch_bytes: 16 << 10, recycle_segments: 2 }
}

/// Opens the engine on the current queue.
pub async fn open(dir: &std::path::Path, config: &LogConfig) -> (LogEngine, RecoveryReport) {
    LogEngine::open(dir, config.clone(), LogQueues::current()).await.expect("open log")
}

/// Deterministic payload for a (region, index, version) triple.
pub fn payload(region: u64, index: u64, version: u64, len: usize) -> bytes::Bytes {
    let mut v = Vec::with_capacity(len);
    let mut x = region.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(31)
        ^ version.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    bytes::Bytes::from(v)
}
