//! Checks on a real store: a wrapper that counts the calls made to it, and a bound on the
//! size of the futures it returns.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use session_core::store::conformance::new_key;
use session_core::store::{
    Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey, UserKey,
};
use session_core::SharedStore;

/// Asserts that each of `store`'s per-request operations returns a future of at most
/// [`MAX_FUTURE_BYTES`]. Every request allocates the future of each store operation it
/// awaits; past that size glibc's allocator leaves its per-thread cache for its slow path
/// (`_int_malloc`, consolidation on free). A rarely taken branch, such as opening a
/// connection, belongs in a box of its own. The futures are made, never polled: no I/O.
pub fn assert_small_futures(store: &dyn Store) {
    let key = new_key();
    let at = SystemTime::now() + Duration::from_secs(3600);
    let loaded = Loaded::new(b"v".to_vec(), Revision::FIRST);
    let sizes = [
        ("load", std::mem::size_of_val(&*store.load(&key))),
        (
            "load_and_touch",
            std::mem::size_of_val(&*store.load_and_touch(&key, at)),
        ),
        (
            "create",
            std::mem::size_of_val(&*store.create(&key, b"v", at)),
        ),
        (
            "update",
            std::mem::size_of_val(&*store.update(&key, b"v", at, Revision::FIRST)),
        ),
        (
            "update_loaded",
            std::mem::size_of_val(&*store.update_loaded(&key, b"v", at, &loaded)),
        ),
        (
            "delete_if_unchanged",
            std::mem::size_of_val(&*store.delete_if_unchanged(&key, Revision::FIRST)),
        ),
        ("touch", std::mem::size_of_val(&*store.touch(&key, at))),
        ("delete", std::mem::size_of_val(&*store.delete(&key))),
    ];
    for (operation, bytes) in sizes {
        assert!(
            bytes <= MAX_FUTURE_BYTES,
            "{}'s `{operation}` future is {bytes} bytes, more than {MAX_FUTURE_BYTES}",
            store.backend()
        );
    }
}

/// The largest allocation glibc serves from its per-thread cache (`tcache`).
pub const MAX_FUTURE_BYTES: usize = 1032;

/// Counts the calls made to a real store, per operation, for tests of the rules about
/// when a store is (not) written. Every method of [`Store`] goes through to the wrapped
/// store, so that what it counts is what the real store does.
#[derive(Debug)]
pub struct CountingStore {
    inner: SharedStore,
    counts: Mutex<BTreeMap<&'static str, usize>>,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: impl Into<SharedStore>) -> Self {
        Self {
            inner: inner.into(),
            counts: Mutex::default(),
        }
    }

    /// How many times `operation` (`"load"`, `"create"`, ...) was called.
    pub fn count(&self, operation: &str) -> usize {
        self.counts().get(operation).copied().unwrap_or(0)
    }

    /// Calls of every operation together.
    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    /// Forgets the counts so far.
    pub fn reset(&self) {
        self.counts().clear();
    }

    fn add(&self, operation: &'static str) {
        *self.counts().entry(operation).or_default() += 1;
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, usize>> {
        // A count is still right after a panic elsewhere.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.add("load");
        self.inner.load(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.add("create");
        self.inner.create(key, value, at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        self.add("update");
        self.inner.update(key, value, at, revision).await
    }
    /// Counted as an `update`: it is one, handed the whole loaded record.
    async fn update_loaded(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        loaded: &Loaded,
    ) -> Result<Revision, StoreError> {
        self.add("update");
        self.inner.update_loaded(key, value, at, loaded).await
    }
    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.add("touch");
        self.inner.touch(key, at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.add("delete");
        self.inner.delete(key).await
    }
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.add("delete_if_unchanged");
        self.inner.delete_if_unchanged(key, revision).await
    }
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.add("delete_expired");
        self.inner.delete_expired().await
    }
    fn touches_on_load(&self) -> bool {
        self.inner.touches_on_load()
    }
    async fn load_and_touch(
        &self,
        key: &StoreKey,
        at: SystemTime,
    ) -> Result<Option<Loaded>, StoreError> {
        self.add("load_and_touch");
        self.inner.load_and_touch(key, at).await
    }
    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.add("create_bound");
        self.inner.create_bound(key, value, at, user).await
    }
    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        self.add("unbind");
        self.inner.unbind(user, key).await
    }
    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        self.add("list_bound");
        self.inner.list_bound(user).await
    }
    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        self.add("count");
        self.inner.count(prefix).await
    }
    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.add("scan");
        self.inner.scan(prefix, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose answers differ from the trait's defaults, so that a method the
    /// wrapper did not forward would show.
    struct Native;

    #[async_trait::async_trait]
    impl Store for Native {
        fn backend(&self) -> &'static str {
            "native"
        }
        async fn load(&self, _: &StoreKey) -> Result<Option<Loaded>, StoreError> {
            Ok(None)
        }
        async fn create(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: SystemTime,
        ) -> Result<Revision, StoreError> {
            Ok(Revision::FIRST)
        }
        async fn update(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: SystemTime,
            _: Revision,
        ) -> Result<Revision, StoreError> {
            Ok(Revision::FIRST)
        }
        async fn update_loaded(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: SystemTime,
            _: &Loaded,
        ) -> Result<Revision, StoreError> {
            Ok(Revision::new(9))
        }
        async fn touch(&self, _: &StoreKey, _: SystemTime) -> Result<(), StoreError> {
            Err(StoreError::UnknownId)
        }
        async fn delete(&self, _: &StoreKey) -> Result<(), StoreError> {
            Ok(())
        }
        async fn delete_if_unchanged(&self, _: &StoreKey, _: Revision) -> Result<(), StoreError> {
            Ok(())
        }
        async fn delete_expired(&self) -> Result<u64, StoreError> {
            Ok(7)
        }
        fn touches_on_load(&self) -> bool {
            true
        }
        async fn load_and_touch(
            &self,
            _: &StoreKey,
            _: SystemTime,
        ) -> Result<Option<Loaded>, StoreError> {
            Ok(Some(Loaded::new(b"native".to_vec(), Revision::FIRST)))
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn every_method_reaches_the_wrapped_store() {
        let store = CountingStore::new(Native);
        let key = new_key();
        let at = SystemTime::now();
        assert_eq!(store.backend(), "native");
        assert!(store.touches_on_load());
        block_on(async {
            assert_eq!(store.delete_expired().await.unwrap(), 7);
            let loaded = store.load_and_touch(&key, at).await.unwrap().unwrap();
            assert_eq!(loaded.value(), b"native");
            let updated = store.update_loaded(&key, b"v", at, &loaded).await.unwrap();
            assert_eq!(
                updated,
                Revision::new(9),
                "update_loaded went through the default"
            );
        });
        assert_eq!(store.count("load_and_touch"), 1);
        assert_eq!(
            store.count("load"),
            0,
            "load_and_touch went through the default"
        );
        assert_eq!(
            store.count("touch"),
            0,
            "load_and_touch went through the default"
        );
        assert_eq!(store.count("update"), 1);
        assert_eq!(store.total(), 3);
        store.reset();
        assert_eq!(store.total(), 0);
    }
}
