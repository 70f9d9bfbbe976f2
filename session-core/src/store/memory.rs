//! An in-process store for tests and single-process development.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{
    is_session_key, Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey,
    UserKey,
};

/// Sessions in a `HashMap` in this process: lost on restart, not shared between processes.
///
/// For tests and development. Clones share the same map. Expired entries are dropped when
/// read and by [`Store::delete_expired`].
///
/// ```
/// use session_core::MemoryStore;
///
/// let store = MemoryStore::new();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

/// The records and the users' indexes, under one lock so that a bound record and its
/// index entry appear together.
#[derive(Default)]
struct Inner {
    entries: Map<StoreKey, Entry>,
    users: Map<UserKey, BTreeSet<StoreKey>>,
}

/// A map with a fast hasher rather than std's flooding-resistant one: its keys are digests
/// or random ids, which no client chooses.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Keys are session ids and values session data: only their number shows.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.lock().entries.len())
            .finish()
    }
}

struct Entry {
    value: Vec<u8>,
    revision: Revision,
    expires_at: SystemTime,
}

impl Entry {
    fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }

    fn loaded(&self) -> Loaded {
        Loaded::new(self.value.clone(), self.revision).with_expiry(self.expires_at)
    }

    fn listed(&self, key: &StoreKey) -> Listed {
        Listed::new(key.clone(), self.value.clone(), self.expires_at)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes expired sessions every `interval` on the current tokio runtime, as the
    /// stores without native expiry do; the task stops when the returned handle is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use session_core::MemoryStore;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let cleanup = store.spawn_cleanup(Duration::from_secs(600));
    /// cleanup.stop();
    /// # });
    /// ```
    pub fn spawn_cleanup(&self, interval: std::time::Duration) -> crate::Cleanup {
        crate::spawn_cleanup(self.clone(), interval)
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        let now = SystemTime::now();
        self.lock()
            .entries
            .values()
            .filter(|e| e.is_live(now))
            .count()
    }

    /// Whether there are no live sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave a half-written entry behind (every
        // critical section is a single map operation), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `create`, and with `user` also `create_bound`: the record and its index entry
    /// appear under one lock.
    fn insert(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: Option<&UserKey>,
    ) -> Result<Revision, StoreError> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        let entry = Entry {
            value: value.to_vec(),
            revision: Revision::FIRST,
            expires_at: at,
        };
        // One lookup, for the check and the insertion: the key is hashed once.
        match inner.entries.entry(key.clone()) {
            Slot::Occupied(slot) if slot.get().is_live(now) => {
                return Err(StoreError::DuplicateId);
            }
            // Vacant, or an expired record's: either way the new one takes the slot.
            slot => {
                slot.insert_entry(entry);
            }
        }
        if let Some(user) = user {
            inner
                .users
                .entry(user.clone())
                .or_default()
                .insert(key.clone());
        }
        Ok(Revision::FIRST)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let now = SystemTime::now();
        let entries = &mut self.lock().entries;
        match entries.get(key) {
            Some(entry) if entry.is_live(now) => Ok(Some(entry.loaded())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.insert(key, value, at, None)
    }

    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        let now = SystemTime::now();
        match self.lock().entries.get_mut(key) {
            Some(entry) if !entry.is_live(now) => Err(StoreError::UnknownId),
            Some(entry) if entry.revision != revision => {
                Err(StoreError::conflict_with(entry.loaded()))
            }
            Some(entry) => {
                // In place, as a session's record keeps about the same size from write to
                // write; anew when it shrank a lot, so that it does not keep the room.
                if entry.value.capacity() > 2 * value.len() {
                    entry.value = value.to_vec();
                } else {
                    entry.value.clear();
                    entry.value.extend_from_slice(value);
                }
                entry.revision = revision.next();
                entry.expires_at = at;
                Ok(entry.revision)
            }
            None => Err(StoreError::UnknownId),
        }
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        let now = SystemTime::now();
        match self.lock().entries.get_mut(key) {
            Some(entry) if entry.is_live(now) => {
                entry.expires_at = at;
                Ok(())
            }
            _ => Err(StoreError::UnknownId),
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.lock().entries.remove(key);
        Ok(())
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        let now = SystemTime::now();
        let entries = &mut self.lock().entries;
        match entries.get(key) {
            Some(entry) if !entry.is_live(now) => Err(StoreError::UnknownId),
            Some(entry) if entry.revision != revision => {
                Err(StoreError::conflict_with(entry.loaded()))
            }
            Some(_) => {
                entries.remove(key);
                Ok(())
            }
            None => Err(StoreError::UnknownId),
        }
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = SystemTime::now();
        let inner = &mut *self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, entry| entry.is_live(now));
        let removed = before - inner.entries.len();
        let records = &inner.entries;
        inner.users.retain(|_, keys| {
            keys.retain(|key| records.contains_key(key));
            !keys.is_empty()
        });
        Ok(removed as u64)
    }

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.insert(key, value, at, Some(user))
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(keys) = inner.users.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                inner.users.remove(user);
            }
        }
        Ok(())
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let now = SystemTime::now();
        let inner = &mut *self.lock();
        let Some(keys) = inner.users.get_mut(user) else {
            return Ok(Vec::new());
        };
        let entries = &inner.entries;
        keys.retain(|key| entries.get(key).is_some_and(|e| e.is_live(now)));
        let listed = keys
            .iter()
            .filter_map(|key| entries.get(key).map(|entry| entry.listed(key)))
            .collect();
        if keys.is_empty() {
            inner.users.remove(user);
        }
        Ok(listed)
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let now = SystemTime::now();
        let inner = self.lock();
        let live = inner
            .entries
            .iter()
            .filter(|(key, entry)| is_session_key(prefix, key.as_str()) && entry.is_live(now))
            .count();
        Ok(live as u64)
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let now = SystemTime::now();
        let limit = limit.max(1);
        let inner = self.lock();
        let mut keys: Vec<&StoreKey> = inner
            .entries
            .iter()
            .filter(|(key, entry)| {
                is_session_key(prefix, key.as_str())
                    && entry.is_live(now)
                    && after.is_none_or(|after| key.as_str() > after.as_str())
            })
            .map(|(key, _)| key)
            .collect();
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let records: Vec<Listed> = keys
            .iter()
            .filter_map(|key| inner.entries.get(*key).map(|entry| entry.listed(key)))
            .collect();
        let next = more
            .then(|| keys.last().map(|key| ScanCursor::new(key.as_str())))
            .flatten();
        Ok(ScanPage { records, next })
    }
}
