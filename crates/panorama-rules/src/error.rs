//! Errors of the operations service; the HTTP layer maps each to a status.

use panorama_core::Invalid;
use panorama_store::StoreError;

/// What an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Invalid input, naming the field; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (wrong status, stale
    /// version, a rule defined in a file).
    #[error("{0}")]
    Conflict(String),
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An attachment larger than allowed.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// An attachment of a media type not accepted.
    #[error("{0}")]
    UnsupportedType(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(i) => Self::Invalid(i),
            e @ StoreError::NotFound { .. } => Self::NotFound(e.to_string()),
            StoreError::Conflict(m) => Self::Conflict(m),
            e => Self::Store(e),
        }
    }
}

/// Result of an operation.
pub type OpsResult<T> = Result<T, OpsError>;
