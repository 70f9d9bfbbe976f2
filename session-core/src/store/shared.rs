//! One store shared by the middleware, cleanup tasks and the application.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::Store;

/// A store behind a shared pointer, cheap to clone: what the middleware, a cleanup task and
/// the application hold when they use one store.
///
/// Anything that takes a store takes `impl Into<SharedStore>`, so a store, an `Arc` of
/// one or an `Arc<dyn Store>` all fit, and calls reach the store directly rather than
/// through a wrapper.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use session_core::{MemoryStore, SharedStore};
///
/// let store = Arc::new(MemoryStore::new());
/// let shared = SharedStore::from(Arc::clone(&store));
/// assert_eq!(shared.backend(), "memory");
/// let also: SharedStore = MemoryStore::new().into();
/// assert_eq!(also.backend(), "memory");
/// ```
#[derive(Clone)]
pub struct SharedStore(Arc<dyn Store>);

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: impl Store) -> Self {
        Self(Arc::new(store))
    }

    /// The pointer itself, for code that keeps an `Arc<dyn Store>`.
    pub fn as_arc(&self) -> &Arc<dyn Store> {
        &self.0
    }
}

impl Deref for SharedStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl<S: Store> From<S> for SharedStore {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

impl<S: Store> From<Arc<S>> for SharedStore {
    fn from(store: Arc<S>) -> Self {
        Self(store)
    }
}

impl From<Arc<dyn Store>> for SharedStore {
    fn from(store: Arc<dyn Store>) -> Self {
        Self(store)
    }
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedStore")
            .field(&self.0.backend())
            .finish()
    }
}
