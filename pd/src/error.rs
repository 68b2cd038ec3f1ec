//! PD errors.

use net::proto::pdpb::ErrorType;
use net::NetError;

/// What can go wrong in PD or talking to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdError {
    /// PD's own storage failed.
    #[error("PD storage: {0}")]
    Storage(String),
    /// PD answered with an error.
    #[error("PD error {kind:?}: {message}")]
    Server {
        /// The error type.
        kind: ErrorType,
        /// Its message.
        message: String,
    },
    /// The network failed (after retries, for the client).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The response was missing a field.
    #[error("malformed PD response: {0}")]
    Malformed(String),
}

impl PdError {
    /// A server-side error of a kind.
    pub fn server(kind: ErrorType, message: impl Into<String>) -> Self {
        PdError::Server { kind, message: message.into() }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, PdError>;
