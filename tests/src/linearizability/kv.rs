//! Running operations through a [`KvClient`] while a [`Recorder`] writes them down.

use std::time::Duration;

use bytes::Bytes;
use futures_lite::FutureExt;
use net::kv::{KvClient, RetryCause};

use super::history::{cas_outcome, Op, Outcome, Recorder};

/// How to record what the client's retries may have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// As the client reports: every operation takes effect at most once.
    AtMostOnce,
    /// The client retries an attempt that failed on the network (a timeout, a lost
    /// connection) although the store may have applied it: a write so retried may have been
    /// applied once more per such retry ([`Recorder::possible_duplicate`]).
    AtLeastOnce,
}

/// One client of a recorded run: its operations go through `kv` and into `rec`.
pub struct RecordingClient {
    /// The routing client. Used for one operation at a time: its counters tell each
    /// operation's retries.
    pub kv: KvClient,
    /// Where operations are recorded.
    pub rec: Recorder,
    /// This client's number in the history.
    pub client: usize,
    /// An operation without an answer after this long is abandoned with an unknown outcome,
    /// whatever the client's own deadline.
    pub limit: Duration,
    /// How retries are recorded.
    pub retries: Retries,
}

impl RecordingClient {
    /// Runs `op` on `key`, recorded; an error or no answer within the limit leaves the outcome
    /// unknown. The client's retries are noted on the operation.
    pub async fn run(&self, key: impl Into<Bytes>, op: Op) -> Outcome {
        let (kv, key) = (&self.kv, key.into());
        let before = kv.stats();
        let id = self.rec.invoke(self.client, key.clone(), op.clone());
        let run = async {
            let r = match &op {
                Op::Get => kv.get(key).await.map(Outcome::Get),
                Op::Put(v) => kv.put(key, v.clone()).await.map(|_| Outcome::Put),
                Op::Cas { expected, new } => kv
                    .compare_and_swap(key, expected.clone(), new.clone())
                    .await
                    .map(|r| cas_outcome(expected, new, &r)),
            };
            r.unwrap_or(Outcome::Unknown)
        };
        let give_up = async {
            glommio::timer::sleep(self.limit).await;
            Outcome::Unknown
        };
        let outcome = run.or(give_up).await;
        self.rec.complete(id, outcome.clone());
        let after = kv.stats();
        let retried: Vec<String> = RetryCause::ALL
            .iter()
            .filter_map(|&c| {
                let n = after.retries(c).saturating_sub(before.retries(c));
                (n > 0).then(|| format!("{c:?} x{n}"))
            })
            .collect();
        if !retried.is_empty() {
            self.rec.note(id, format!("retried: {}", retried.join(", ")));
        }
        if self.retries == Retries::AtLeastOnce && op != Op::Get {
            // Each attempt that failed on the network may have been applied, besides the last.
            let ambiguous = after.retries(RetryCause::Network).saturating_sub(before.retries(RetryCause::Network));
            for _ in 0..ambiguous {
                self.rec.possible_duplicate(id);
            }
        }
        outcome
    }
}
