//! What can go wrong in a store, typed, with the cause kept as the error's source.

use std::error::Error as StdError;

use super::Loaded;

type Source = Box<dyn StdError + Send + Sync + 'static>;

/// An error from a [`Store`](crate::store::Store) operation.
///
/// The first three variants are answers of the contract, not failures: the manager reacts
/// to them (a new id on `DuplicateId`, a dropped write on `UnknownId`, a merge on
/// `Conflict`). The rest mean the store could not do its job; the middleware answers those
/// with 503 and a log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found a record under that key already; nothing was written.
    #[error("a session with this id already exists")]
    DuplicateId,
    /// `update`, `touch` or `delete_if_unchanged` found no live record under that key;
    /// nothing was written.
    #[error("no live session with this id")]
    UnknownId,
    /// `update` or `delete_if_unchanged` found the record at another revision than the
    /// one given: another request wrote it meanwhile. Nothing was written.
    #[error("the session was changed by another request")]
    Conflict {
        /// The record as it is now, when the backend returns it in the same round trip
        /// (`None`: load it again).
        current: Option<Loaded>,
    },
    /// The store could not be reached or did not answer in time.
    #[error("{backend} session store is unavailable")]
    Unavailable {
        /// Which backend, as in [`Store::backend`](crate::store::Store::backend).
        backend: &'static str,
        /// What the client library or the operating system said.
        #[source]
        source: Source,
    },
    /// The value is larger than the store accepts; nothing was written.
    #[error("session of {size} bytes is larger than the {backend} store accepts ({limit} bytes)")]
    TooLarge {
        /// Which backend.
        backend: &'static str,
        /// The encoded session's size in bytes.
        size: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// The backend cannot do this at all (memcached cannot list its keys, say); see the
    /// store's documentation.
    #[error("the {backend} session store does not support {operation}")]
    Unsupported {
        /// Which backend.
        backend: &'static str,
        /// The [`Store`](crate::store::Store) method asked for.
        operation: &'static str,
    },
    /// The store answered with an error.
    #[error("{backend} session store failed")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Source,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] from any error.
    pub fn backend(backend: &'static str, source: impl Into<Source>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }

    /// A [`StoreError::Unavailable`] from any error.
    pub fn unavailable(backend: &'static str, source: impl Into<Source>) -> Self {
        Self::Unavailable {
            backend,
            source: source.into(),
        }
    }

    /// A [`StoreError::Unsupported`].
    pub fn unsupported(backend: &'static str, operation: &'static str) -> Self {
        Self::Unsupported { backend, operation }
    }

    /// Whether this is an answer of the contract (`DuplicateId`, `UnknownId`, `Conflict`)
    /// rather than a failure of the store.
    pub fn is_contract_answer(&self) -> bool {
        matches!(
            self,
            Self::DuplicateId | Self::UnknownId | Self::Conflict { .. }
        )
    }

    /// A [`StoreError::Conflict`] without the current record.
    pub fn conflict() -> Self {
        Self::Conflict { current: None }
    }

    /// A [`StoreError::Conflict`] with the current record.
    pub fn conflict_with(current: Loaded) -> Self {
        Self::Conflict {
            current: Some(current),
        }
    }
}
