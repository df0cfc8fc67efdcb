//! Store errors. The HTTP layer maps each kind to a status code in one place.

use panorama_core::Invalid;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input is invalid; nothing was written.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A referenced thing does not exist.
    #[error("{what} '{key}' does not exist")]
    NotFound {
        /// Kind of thing (`entity`, `indicator`…).
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The write conflicts with what is stored (duplicate id, …).
    #[error("{0}")]
    Conflict(String),
    /// The store cannot take more right now; try again later.
    #[error("the store is busy; retry in {retry_after_secs} s")]
    Overloaded {
        /// Suggested wait.
        retry_after_secs: u64,
    },
    /// The data dir was written by a newer Panorama.
    #[error(
        "the data dir {path} has schema version {found}, but this Panorama supports up to {supported}; upgrade Panorama or use another data dir"
    )]
    TooNew {
        /// Data dir.
        path: String,
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Another process holds the data dir.
    #[error("the data dir {0} is in use by another Panorama process")]
    Locked(String),
    /// I/O or database failure.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    /// A backend failure from any error.
    pub fn backend(e: impl std::fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }
}
