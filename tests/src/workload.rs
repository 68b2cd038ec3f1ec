//! Client workloads that remember what was acknowledged, for checking afterwards that every
//! acknowledged write is there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use net::kv::KvClient;

/// Acknowledged writes: key → value (shared with the test thread).
pub type Acked = Arc<Mutex<BTreeMap<Bytes, Bytes>>>;

/// An empty record of acknowledged writes.
pub fn acked() -> Acked {
    Arc::new(Mutex::new(BTreeMap::new()))
}

/// The key of client `c`'s `i`-th write.
pub fn key(c: usize, i: usize) -> Bytes {
    Bytes::from(format!("c{c:02}-k{i:08}"))
}

/// The value written under `key(c, i)` (padded to `len` bytes).
pub fn value(c: usize, i: usize, len: usize) -> Bytes {
    let mut v = format!("v{c}-{i}-").into_bytes();
    while v.len() < len {
        v.push(b'.');
    }
    Bytes::from(v)
}

/// Outcome of a writer.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    /// Writes acknowledged.
    pub acked: usize,
    /// Writes that failed after the client's retries.
    pub failed: usize,
}

/// `clients` writers, each writing its own keys `0..per_client` in order (retrying failed
/// writes until it succeeds or `deadline` passes), recording every acknowledged write.
pub async fn write_keys(
    kv: &KvClient,
    clients: usize,
    per_client: usize,
    value_len: usize,
    acked: &Acked,
    deadline: Duration,
) -> WriterStats {
    let end = Instant::now() + deadline;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (kv, acked) = (kv.clone(), acked.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut s = WriterStats::default();
            for i in 0..per_client {
                loop {
                    match kv.put(key(c, i), value(c, i, value_len)).await {
                        Ok(()) => {
                            acked.lock().unwrap().insert(key(c, i), value(c, i, value_len));
                            s.acked += 1;
                            break;
                        }
                        Err(e) => {
                            s.failed += 1;
                            assert!(Instant::now() < end, "client {c} could not write key {i}: {e}");
                        }
                    }
                }
            }
            s
        }));
    }
    let mut total = WriterStats::default();
    for t in tasks {
        let s = t.await;
        total.acked += s.acked;
        total.failed += s.failed;
    }
    total
}

/// Checks that every acknowledged write reads back with its value.
pub async fn verify(kv: &KvClient, acked: &Acked) {
    let expected: Vec<(Bytes, Bytes)> = acked.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in expected {
        let got = kv.get(k.clone()).await.unwrap_or_else(|e| panic!("reading {k:?}: {e}"));
        assert_eq!(got.as_ref(), Some(&v), "acknowledged write {k:?} lost or changed");
    }
}
