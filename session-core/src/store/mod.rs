//! For authors of stores: the contract between sessions and the places they are kept.
//!
//! A store implements [`Store`], a small object-safe async trait over opaque bytes, keyed
//! by [`StoreKey`], with revisions ([`Revision`]) that make a write-back conditional on
//! the record the request loaded. It answers with typed [`StoreError`]s that keep their
//! source. Keys, ids, signing, encoding and every session rule stay in this crate: a
//! store only keeps bytes until they expire.
//!
//! # Testing a store
//! With the `test-suite` feature, one line runs the conformance suite every store in this
//! project passes, against a real server:
//!
//! ```ignore
//! session_core::store_conformance_tests!(async { MyStore::connect("...").await.unwrap() });
//! ```

#[cfg(feature = "test-suite")]
pub mod conformance;
mod error;
mod key;
mod listed;
mod memory;
mod shared;
pub mod time;

use std::time::SystemTime;

use async_trait::async_trait;

pub use error::StoreError;
pub use key::{is_session_key, KeyScheme, SessionHandle, StoreKey, UserKey, DEFAULT_KEY_PREFIX};
pub use listed::{Listed, ScanCursor, ScanPage};
pub use memory::MemoryStore;
pub use shared::SharedStore;

/// A place to keep sessions: an async key-value store with expiry and revisions.
///
/// Values are opaque bytes (the encoded session, see [`Codec`](crate::Codec)); expiry is an
/// absolute time. Every record carries a [`Revision`] that changes with each write of its
/// value, so that a write-back can be made conditional on the record still being the one
/// the request loaded: two overlapping requests then merge instead of overwriting each
/// other. Each operation should be one round trip where the backend allows it. Every
/// backend passes the same conformance suite (`session_core::store_conformance_tests!`,
/// behind the `test-suite` feature).
///
/// | operation | must |
/// |---|---|
/// | [`load`](Store::load) | return the value and its revision, or `None` if absent or expired |
/// | [`create`](Store::create) | insert only if absent; otherwise [`StoreError::DuplicateId`] and no write |
/// | [`update`](Store::update) | replace only if present, live and still at the given revision; absent is [`StoreError::UnknownId`], another revision is [`StoreError::Conflict`]; never a resurrection |
/// | [`update_loaded`](Store::update_loaded) | `update`, given the whole record as loaded rather than its revision |
/// | [`touch`](Store::touch) | set a new expiry without rewriting the value or changing the revision; absent is [`StoreError::UnknownId`] |
/// | [`delete`](Store::delete) | remove; absent is not an error |
/// | [`delete_if_unchanged`](Store::delete_if_unchanged) | remove only if still at the given revision, with the answers of `update` |
/// | [`delete_expired`](Store::delete_expired) | remove expired records in bounded batches (stores without native expiry) |
/// | [`create_bound`](Store::create_bound) | `create`, and the record is in the user's index no later than it exists |
/// | [`unbind`](Store::unbind) | take a key out of a user's index; absent is not an error |
/// | [`list_bound`](Store::list_bound) | the live records in a user's index, untouched; entries of absent or expired records pruned |
/// | [`count`](Store::count) | the number of live sessions under a prefix, or [`StoreError::Unsupported`] |
/// | [`scan`](Store::scan) | a page of live sessions under a prefix, untouched, or [`StoreError::Unsupported`] |
///
/// The trait is object-safe; the middleware holds it as a [`SharedStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and traces: `"memory"`, `"file"`, `"redis"`, ...
    fn backend(&self) -> &'static str;

    /// The value under `key` with its revision, or `None` when it is absent or expired.
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError>;

    /// Inserts `value` under `key` unless a live record is there, and returns the new
    /// record's revision.
    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<Revision, StoreError>;

    /// Replaces the value under `key` if a live record is there and its revision is still
    /// `revision`; returns the new revision. Never creates a record.
    ///
    /// A live record at another revision is [`StoreError::Conflict`], carrying the current
    /// record when the backend can return it in the same round trip.
    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError>;

    /// [`update`](Store::update) of the record this request read as `loaded`: the write
    /// happens only if the stored record is still that one.
    ///
    /// The answers are `update`'s. The default calls `update` with `loaded`'s revision; a
    /// store whose server compares whole values natively (Valkey's and Redis's
    /// `SET ... IFEQ`) overrides it to write without a server-side script.
    ///
    /// `loaded` must be exactly what this store returned (from a load, or in a
    /// [`StoreError::Conflict`]). A wrapper that changes values on their way to the inner
    /// store (encryption, compression) keeps this default rather than forwarding the call,
    /// since the inner store would compare its stored bytes with the wrapper's.
    async fn update_loaded(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
        loaded: &Loaded,
    ) -> Result<Revision, StoreError> {
        self.update(key, value, expires_at, loaded.revision()).await
    }

    /// Moves the expiry of a live record without rewriting its value or changing its
    /// revision.
    async fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), StoreError>;

    /// Removes the record under `key`, if any, whatever its revision.
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError>;

    /// Removes the record under `key` only if it is live and still at `revision`: the
    /// answers are those of [`update`](Store::update), so a request that emptied a session
    /// does not throw away what another request wrote meanwhile.
    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError>;

    /// Removes expired records, in bounded batches, and returns how many it removed.
    ///
    /// Stores whose server expires records by itself keep this default, which does nothing.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Inserts `value` under `key` unless a live record is there, like
    /// [`create`](Store::create), and binds the record to `user`: from then on
    /// [`list_bound`](Store::list_bound) lists it for as long as it lives.
    ///
    /// The index entry must exist no later than the record, so that no live bound
    /// session is ever missing from its user's index (an entry whose record never came is
    /// pruned when met). The default answers [`StoreError::Unsupported`].
    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        expires_at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        let _ = (key, value, expires_at, user);
        Err(StoreError::unsupported(self.backend(), "create_bound"))
    }

    /// Takes `key` out of `user`'s index, once its record was deleted or moved. An entry
    /// that is not there is not an error. Stores whose index is a field of the record
    /// itself have nothing left to do.
    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        let _ = (user, key);
        Err(StoreError::unsupported(self.backend(), "unbind"))
    }

    /// The live records bound to `user`, read without touching them, in no particular
    /// order. Entries whose record is absent or expired are pruned as they are met; an
    /// entry never keeps a record alive or brings one back.
    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let _ = user;
        Err(StoreError::unsupported(self.backend(), "list_bound"))
    }

    /// The number of live sessions whose keys start with `prefix` (user indexes are not
    /// sessions), or [`StoreError::Unsupported`] where the backend cannot list its keys
    /// (memcached).
    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let _ = prefix;
        Err(StoreError::unsupported(self.backend(), "count"))
    }

    /// A page of at most about `limit` live sessions whose keys start with `prefix`, read
    /// without touching them, starting where `after` (the previous page's
    /// [`ScanPage::next`]) says. A session that lives through a whole scan is listed at
    /// least once. [`StoreError::Unsupported`] where the backend cannot list its keys.
    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let _ = (prefix, after, limit);
        Err(StoreError::unsupported(self.backend(), "scan"))
    }

    /// Whether [`load_and_touch`](Store::load_and_touch) costs one round trip (Redis
    /// `GETEX`, memcached `gat`). When it does, the middleware refreshes expiry on read;
    /// otherwise it touches only when the refresh threshold has passed.
    fn touches_on_load(&self) -> bool {
        false
    }

    /// Loads and moves the expiry in one step where the backend can.
    ///
    /// The default is `load` followed by `touch`.
    async fn load_and_touch(
        &self,
        key: &StoreKey,
        expires_at: SystemTime,
    ) -> Result<Option<Loaded>, StoreError> {
        let Some(loaded) = self.load(key).await? else {
            return Ok(None);
        };
        match self.touch(key, expires_at).await {
            Ok(()) => Ok(Some(loaded.with_expiry(expires_at))),
            Err(StoreError::UnknownId) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Which write of a record a request loaded: an opaque token that a store changes every
/// time it writes the record's value.
///
/// Stores that count writes start at [`Revision::FIRST`] and use [`Revision::next`];
/// stores with a native token (memcached's CAS) carry theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revision(u64);

impl Revision {
    /// The revision of a newly created record, for stores that count writes.
    pub const FIRST: Self = Self(1);

    /// A revision from its stored number.
    pub const fn new(number: u64) -> Self {
        Self(number)
    }

    /// The number to store.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The revision after this one, for stores that count writes. It wraps past the last
    /// number back to [`Revision::FIRST`], after which it is still different from every
    /// revision a request can hold in practice.
    #[must_use]
    pub const fn next(self) -> Self {
        match self.0.wrapping_add(1) {
            0 => Self::FIRST,
            n => Self(n),
        }
    }
}

/// A record read from a store.
#[derive(Clone, PartialEq, Eq)]
pub struct Loaded {
    value: Vec<u8>,
    revision: Revision,
    expires_at: Option<SystemTime>,
}

impl Loaded {
    /// A record at `revision` whose expiry the store does not report (Redis `GET`, say).
    pub fn new(value: Vec<u8>, revision: Revision) -> Self {
        Self {
            value,
            revision,
            expires_at: None,
        }
    }

    /// Records when this record expires, for stores that know it at no extra cost. The
    /// middleware uses it to touch at most once per refresh threshold.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The stored bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Takes the stored bytes out.
    pub fn into_value(self) -> Vec<u8> {
        self.value
    }

    /// The record's revision, for a conditional [`Store::update`].
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// When the record expires, if the store reported it.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("bytes", &self.value.len())
            .field("revision", &self.revision)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
