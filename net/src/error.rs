//! Errors of the network layer.

use crate::frame::FrameError;
use crate::proto::rpcpb::StatusCode;

/// What can go wrong with a call or a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Could not connect.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection is closed (the reason says why); calls in flight are lost.
    #[error("connection closed: {0}")]
    Closed(String),
    /// No response within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A frame could not be sent or received.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A payload did not decode as the expected message.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// The message type.
        what: &'static str,
        /// prost's error.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("server error {code:?}: {message}")]
    Status {
        /// The status code.
        code: StatusCode,
        /// Its message.
        message: String,
    },
}

impl NetError {
    /// Whether retrying (on a new connection) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NetError::Connect { .. }
                | NetError::Closed(_)
                | NetError::Timeout(_)
                | NetError::Status { code: StatusCode::Unavailable, .. }
        )
    }
}
