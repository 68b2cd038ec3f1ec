//! Errors of the routing client.
//!
//! Only what a caller can act on is an error: everything retryable (region errors, network
//! failures, route lookups) is retried inside the client until the operation's deadline, and
//! surfaces as [`KvError::DeadlineExceeded`] naming the last failure.

use std::time::Duration;

use crate::error::NetError;
use crate::proto::errorpb::{region_error::Kind, RegionError};

/// What a KV or admin operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// Retries did not succeed before the operation's deadline.
    #[error("gave up after {elapsed:?} and {retries} retries (deadline {deadline:?}); last error: {last_error}")]
    DeadlineExceeded {
        /// The configured deadline.
        deadline: Duration,
        /// Time spent.
        elapsed: Duration,
        /// Retries made.
        retries: u32,
        /// The failure that caused the last retry.
        last_error: String,
    },
    /// The store refused the request (the response's `error`); retrying would not help.
    #[error("region {region_id}: {message}")]
    Server {
        /// The region the request was sent to.
        region_id: u64,
        /// The store's message.
        message: String,
    },
    /// A network failure that retrying cannot fix (bad request, undecodable response, …).
    #[error("network: {source}")]
    Net {
        /// The underlying error.
        #[from]
        source: NetError,
    },
    /// A response lacked a field it must carry.
    #[error("malformed response: {what}")]
    Malformed {
        /// What was missing or wrong.
        what: String,
    },
    /// A write whose outcome is unknown: it reached (or may have reached) the store and the
    /// answer was lost — a timeout, a closed connection, a store stopping with the write in
    /// flight. It may or may not be applied; the client does not retry it, because a second
    /// application could overwrite a newer write (the write would not be linearizable).
    #[error("region {region_id}: outcome unknown: {reason}")]
    Undetermined {
        /// The region the request was sent to.
        region_id: u64,
        /// What happened.
        reason: String,
    },
    /// The caller's arguments cannot make a valid request.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why.
        reason: String,
    },
}

/// `Result` with [`KvError`].
pub type Result<T> = std::result::Result<T, KvError>;

/// A one-line description of a region error, for logs and [`KvError::DeadlineExceeded`].
pub fn describe_region_error(e: &RegionError) -> String {
    let what = match &e.kind {
        Some(Kind::NotLeader(n)) => match &n.leader {
            Some(l) => format!("not leader of region {}; leader is peer {} on store {}", n.region_id, l.id, l.store_id),
            None => format!("not leader of region {}; leader unknown", n.region_id),
        },
        Some(Kind::EpochNotMatch(m)) => {
            let ids: Vec<String> = m.current_regions.iter().map(|r| r.id.to_string()).collect();
            format!("epoch not match; current regions [{}]", ids.join(", "))
        }
        Some(Kind::RegionNotFound(r)) => format!("region {} not found", r.region_id),
        Some(Kind::KeyNotInRegion(k)) => format!("key not in region {}", k.region_id),
        Some(Kind::ServerIsBusy(b)) => format!("server is busy ({}), back off {} ms", b.reason, b.backoff_ms),
        Some(Kind::StaleCommand(_)) => "stale command".to_string(),
        Some(Kind::WrongShard(w)) => format!("region {} is on shard {}", w.region_id, w.shard),
        Some(Kind::RequestTimeout(t)) => format!("timed out after {} ms ({})", t.elapsed_ms, t.stage),
        Some(Kind::UndeterminedResult(u)) => format!("outcome unknown ({})", u.stage),
        None => "unknown region error".to_string(),
    };
    if e.message.is_empty() {
        what
    } else {
        format!("{what}: {}", e.message)
    }
}
