//! `MemcachedStore`: sessions in memcached, on one server or spread over several.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use memcache::exp::AsyncMetaClient;
//! use session_memcached::MemcachedStore;
//!
//! let store = MemcachedStore::connect("memcache://127.0.0.1:11211").await?;
//! let spread = MemcachedStore::builder("memcache://10.0.0.1:11211,10.0.0.2:11211")
//!     .timeout(Duration::from_millis(500))
//!     .connect()
//!     .await?;
//! let client = AsyncMetaClient::connect("127.0.0.1:11211").await?; // one the app already has
//! let shared = MemcachedStore::from_client(client).connect().await?;
//! # Ok(()) }
//! ```
//!
//! # Setting it up
//! Every store that takes a URL is set up the same way: [`MemcachedStore::connect`] with a
//! URL and the default settings, or a builder, finished by
//! [`connect`](MemcachedStoreBuilder::connect), that starts from a URL
//! ([`MemcachedStore::builder`]) or from an async meta-protocol client of the `memcache`
//! crate the application already has ([`MemcachedStore::from_client`]). `connect` checks
//! that every server answers, so a wrong address fails at start-up. Memcached expires
//! sessions by itself: there is no cleanup to run.
//!
//! # Commands (memcached's meta protocol)
//! A record's [`Revision`] is memcached's own CAS, which every write of the item changes
//! and a touch does not: the stored item is the encoded session and nothing else.
//!
//! | operation | command | reply |
//! |---|---|---|
//! | `load` | `mg key v c` | the value at its CAS; miss = absent |
//! | `load_and_touch` (refresh on read) | `mg key v c T<ttl>` | the same; the CAS stays |
//! | `create` | `ms key S<n> T<ttl> ME c` (add) | the new CAS; `NS` = `DuplicateId` |
//! | `update` | `ms key S<n> T<ttl> C<cas> c` (compare-and-set) | the new CAS; `NF` = `UnknownId` (never a resurrection), `EX` = `Conflict` without the current record |
//! | `touch` | `mg key T<ttl>` without the value | the CAS stays; miss = `UnknownId` |
//! | `delete` | `md key` | |
//! | `delete_if_unchanged` | `md key C<cas>` | `NF` = `UnknownId`, `EX` = `Conflict` without the current record |
//!
//! The client also asks every `mg` for the item's flags (`f`), which this crate leaves at 0.
//! No live item has CAS 0, so a write conditional on revision 0 cannot succeed: it is
//! answered by `mg key v c` instead, `Conflict` with the current record or `UnknownId`,
//! and writes nothing. A server started with `-C` keeps no CAS: its items
//! are a `StoreError::Backend` on load and create rather than records that no write could
//! be conditional on.
//!
//! Memcached enforces the idle expiry (the item's TTL, which `touch` moves without
//! rewriting the value); the absolute timeout is checked on read against the creation
//! time in the record. TTLs are whole seconds, rounded up; lifetimes over 30 days are
//! sent as absolute Unix times, as the protocol requires, and end in January 2038 at the
//! latest, the last time memcached can express. Keys are `<prefix><id>`, checked against
//! the 250-byte key limit; a session larger than the item size limit (memcached's `-I`,
//! 1 MiB by default: tell the store with [`MemcachedStoreBuilder::max_item_size`]) is
//! refused with `StoreError::TooLarge` before anything is sent.
//!
//! # Why the async meta-protocol client
//! `memcache` 0.21 has a blocking classic client and an async meta-protocol client
//! (`memcache::exp`). Calling the blocking one from async code would need
//! `spawn_blocking` for every operation, a thread hop each time; the async client does the
//! I/O on the calling task, from per-server connection pools, and never parks a runtime
//! thread. `cargo run --release -p session-memcached --example client_choice` compares the
//! two on one single-threaded runtime, as an actix worker has (results in the
//! repository's `docs/performance.md`).
//!
//! # Servers that are down
//! Calls fail within the timeout (1 s by default) with `StoreError::Unavailable`, which
//! the middleware answers with 503; the pool redials on the next call, so a server that
//! comes back is used again without a restart.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use memcache::exp::{
    AsyncMetaClient, Delete, Error as McError, Get, GetResult, Meta, MutationResult,
    MutationStatus, Set, Ttl,
};
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};

const BACKEND: &str = "memcached";

/// memcached's key length limit.
pub const MAX_KEY_LENGTH: usize = 250;

/// memcached's default item size limit (`-I 1m`).
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// Overhead memcached counts against the item size besides key and value (item header,
/// suffix, CAS), rounded up.
const ITEM_OVERHEAD: usize = 64;

/// Sessions in memcached. Cloning is cheap and shares the connection pools.
#[derive(Clone)]
pub struct MemcachedStore {
    client: AsyncMetaClient,
    max_item_size: usize,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("max_item_size", &self.max_item_size)
            .finish_non_exhaustive()
    }
}

/// Configures a [`MemcachedStore`]: made by [`MemcachedStore::builder`] from a URL or by
/// [`MemcachedStore::from_client`] from a client, and finished by
/// [`connect`](MemcachedStoreBuilder::connect).
#[derive(Clone)]
#[must_use]
pub struct MemcachedStoreBuilder {
    source: Source,
    timeout: Duration,
    max_item_size: usize,
}

/// Where a builder's store finds its servers.
#[derive(Clone)]
enum Source {
    Url(String),
    Client(AsyncMetaClient),
}

impl std::fmt::Debug for MemcachedStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Url(url) => url.as_str(),
            Source::Client(_) => "an AsyncMetaClient",
        };
        f.debug_struct("MemcachedStoreBuilder")
            .field("source", &source)
            .field("timeout", &self.timeout)
            .field("max_item_size", &self.max_item_size)
            .finish()
    }
}

/// A `memcache://` URL this crate cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid memcached URL: expected memcache://host:port[,host:port...]")]
pub struct UrlError;

/// A key memcached cannot store.
#[derive(Debug, thiserror::Error)]
#[error("a memcached key must be 1 to 250 bytes without spaces or control characters")]
pub struct KeyError;

impl MemcachedStoreBuilder {
    /// How long connecting or one exchange may take before the call fails with
    /// `StoreError::Unavailable`. A client given to [`MemcachedStore::from_client`] keeps
    /// the timeouts it was built with.
    ///
    /// # Default
    /// 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The servers' item size limit, memcached's `-I`. Larger sessions are refused with
    /// `StoreError::TooLarge` before anything is sent.
    ///
    /// # Default
    /// [`DEFAULT_MAX_ITEM_SIZE`], 1 MiB, memcached's own default.
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// Resolves the servers and checks that every one answers.
    ///
    /// # Errors
    /// `StoreError::Backend` for a URL this crate cannot use ([`UrlError`]),
    /// `StoreError::Unavailable` if a server cannot be reached within the timeout.
    pub async fn connect(self) -> Result<MemcachedStore, StoreError> {
        let client = match self.source {
            Source::Url(url) => {
                let servers = parse_url(&url).map_err(|e| StoreError::backend(BACKEND, e))?;
                AsyncMetaClient::builder()
                    .connect_timeout(Some(self.timeout))
                    .io_timeout(Some(self.timeout))
                    .connect_multiple_async(servers.iter().map(String::as_str))
                    .await
                    .map_err(failed)?
            }
            Source::Client(client) => client,
        };
        // A no-op round trip to every server, so a wrong address fails at start-up.
        client.noop().await.map_err(failed)?;
        Ok(MemcachedStore {
            client,
            max_item_size: self.max_item_size,
        })
    }
}

fn parse_url(url: &str) -> Result<Vec<String>, UrlError> {
    let hosts = url.strip_prefix("memcache://").ok_or(UrlError)?;
    let servers: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| {
            if host.contains(':') {
                host.to_owned()
            } else {
                format!("{host}:11211")
            }
        })
        .collect();
    if servers.is_empty() {
        Err(UrlError)
    } else {
        Ok(servers)
    }
}

/// A memcached failure without the key: the client's own messages name the key, which
/// holds the session id, and ids must never reach a log.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("i/o error")]
    Io(#[source] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("the answer was lost; the command may or may not have been applied")]
    Ambiguous(#[source] Box<Failure>),
    #[error("server error: {0}")]
    Server(String),
    #[error("memcached answered without a CAS: conditional writes need CAS, which `memcached -C` turns off")]
    NoCas,
    #[error("unexpected answer to a {0}")]
    Unexpected(&'static str),
    #[error("{0}")]
    Other(String),
}

impl Failure {
    fn new(error: McError) -> Self {
        match error {
            McError::Io(error) => Self::Io(error),
            McError::Timeout { .. } => Self::Timeout,
            McError::Ambiguous { source, .. } => Self::Ambiguous(Box::new(Self::new(*source))),
            McError::Server(message) => Self::Server(message),
            other => Self::Other(match other {
                McError::Protocol(m) | McError::Rejected(m) => m,
                McError::Usage(m) => m.to_owned(),
                _ => "memcached client error".to_owned(),
            }),
        }
    }

    /// Transport failures are `Unavailable` (503); anything else is a `Backend` error.
    fn into_store_error(self) -> StoreError {
        match self {
            Self::Io(_) | Self::Timeout | Self::Ambiguous(_) => {
                StoreError::unavailable(BACKEND, self)
            }
            _ => StoreError::backend(BACKEND, self),
        }
    }

    fn is_too_large(&self) -> bool {
        match self {
            Self::Server(message) => message.contains("too large"),
            Self::Ambiguous(source) => source.is_too_large(),
            _ => false,
        }
    }
}

fn failed(error: McError) -> StoreError {
    Failure::new(error).into_store_error()
}

/// memcached reads an expiry time as a signed 32-bit number, so it cannot keep an item
/// past January 2038; a later expiry is cut to that (the manager checks expiry on read).
const LATEST_EXPIRY: Duration = Duration::from_secs(i32::MAX as u64);

/// memcached reads a TTL above 30 days as an absolute Unix time.
const MAX_RELATIVE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whole seconds from now until `at`, rounded up, at least 1; beyond 30 days, `at` itself
/// (no later than [`LATEST_EXPIRY`]), computed once here so that the time it takes to send
/// cannot push it past what memcached accepts.
fn ttl(at: SystemTime) -> Ttl {
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    if left > MAX_RELATIVE_TTL {
        return Ttl::at(at.min(SystemTime::UNIX_EPOCH + LATEST_EXPIRY));
    }
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Ttl::secs(u32::try_from(secs.max(1)).unwrap_or(u32::MAX))
}

/// An item's CAS as its revision. A live item's CAS is never 0 on a server with CAS
/// enabled, so 0 or none means `-C`, where nothing could be compared.
fn revision(cas: Option<u64>) -> Result<Revision, StoreError> {
    match cas {
        Some(cas) if cas != 0 => Ok(Revision::new(cas)),
        _ => Err(StoreError::backend(BACKEND, Failure::NoCas)),
    }
}

/// The record of a hit, at its CAS; a miss (or any other status) is `None`.
fn hit_record(result: GetResult) -> Result<Option<Loaded>, StoreError> {
    let (hit, cas) = (result.hit(), result.item.cas);
    match result.value.filter(|_| hit) {
        Some(value) => Ok(Some(Loaded::new(value, revision(cas)?))),
        None => Ok(None),
    }
}

/// A read of the value and its CAS (`mg key v c`).
fn get_with_cas(key: &str) -> Get {
    Get::new(key).meta(Meta::NONE.cas())
}

/// The answers of a conditional write (`ms` or `md` with `C<cas>`): `NF` is absent or
/// expired, `EX` another CAS, which memcached does not follow with the current value.
fn conditional(result: &MutationResult, command: &'static str) -> Result<(), StoreError> {
    match result.status {
        MutationStatus::Applied => Ok(()),
        MutationStatus::NotFound => Err(StoreError::UnknownId),
        MutationStatus::CasMismatch => Err(StoreError::conflict()),
        _ => Err(StoreError::backend(BACKEND, Failure::Unexpected(command))),
    }
}

fn check_key(key: &StoreKey) -> Result<&str, StoreError> {
    let key = key.as_str();
    let valid =
        !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(key)
    } else {
        Err(StoreError::backend(BACKEND, KeyError))
    }
}

impl MemcachedStore {
    /// Connects to `memcache://host:port[,host:port...]` with the default settings.
    ///
    /// # Errors
    /// As [`MemcachedStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for the servers in `url`, finished by
    /// [`connect`](MemcachedStoreBuilder::connect).
    pub fn builder(url: impl Into<String>) -> MemcachedStoreBuilder {
        Self::with_source(Source::Url(url.into()))
    }

    /// A builder for a store on a client the application already has, finished by
    /// [`connect`](MemcachedStoreBuilder::connect): the async meta-protocol client of the
    /// `memcache` crate, whose connection pools and server routing the store then shares.
    pub fn from_client(client: AsyncMetaClient) -> MemcachedStoreBuilder {
        Self::with_source(Source::Client(client))
    }

    fn with_source(source: Source) -> MemcachedStoreBuilder {
        MemcachedStoreBuilder {
            source,
            timeout: Duration::from_secs(1),
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
        }
    }

    /// The largest value that fits in an item beside `key`.
    fn value_limit(&self, key: &str) -> usize {
        self.max_item_size.saturating_sub(key.len() + ITEM_OVERHEAD)
    }

    fn too_large(&self, key: &str, value: &[u8]) -> StoreError {
        StoreError::TooLarge {
            backend: BACKEND,
            size: value.len(),
            limit: self.value_limit(key),
        }
    }

    /// Sends a `ms` whose value fits the item size limit.
    async fn store(&self, set: Set, key: &str, value: &[u8]) -> Result<MutationResult, StoreError> {
        // Refused here when the configured limit says so; the server's own refusal (a
        // limit set lower than its `-I`) is the same typed error.
        if value.len() > self.value_limit(key) {
            return Err(self.too_large(key, value));
        }
        self.client.run(set).await.map_err(|error| {
            let failure = Failure::new(error);
            if failure.is_too_large() {
                self.too_large(key, value)
            } else {
                failure.into_store_error()
            }
        })
    }

    /// The answer to a write conditional on revision 0, which no memcached item has: a read
    /// tells absent from live without writing, whatever the server makes of `C0`, and
    /// brings the current record with the conflict.
    async fn at_no_revision(&self, key: &str) -> StoreError {
        let answer = match self.client.run(get_with_cas(key)).await {
            Ok(result) => hit_record(result),
            Err(error) => Err(failed(error)),
        };
        match answer {
            Ok(Some(current)) => StoreError::conflict_with(current),
            Ok(None) => StoreError::UnknownId,
            Err(error) => error,
        }
    }
}

#[async_trait]
impl Store for MemcachedStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let get = get_with_cas(check_key(key)?);
        hit_record(self.client.run(get).await.map_err(failed)?)
    }

    fn touches_on_load(&self) -> bool {
        true
    }

    async fn load_and_touch(
        &self,
        key: &StoreKey,
        at: SystemTime,
    ) -> Result<Option<Loaded>, StoreError> {
        let get = get_with_cas(check_key(key)?).touch(ttl(at));
        let loaded = hit_record(self.client.run(get).await.map_err(failed)?)?;
        Ok(loaded.map(|loaded| loaded.with_expiry(at)))
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        let key = check_key(key)?;
        let set = Set::new(key, value).add().ttl(ttl(at)).return_cas();
        let result = self.store(set, key, value).await?;
        match result.status {
            MutationStatus::Applied => revision(result.cas),
            _ => Err(StoreError::DuplicateId),
        }
    }

    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let key = check_key(key)?;
        if expected.get() == 0 {
            return Err(self.at_no_revision(key).await);
        }
        // Set mode with `C`: compare-and-set answers `NF` for an absent item, so this never
        // resurrects one.
        let set = Set::new(key, value)
            .ttl(ttl(at))
            .compare_cas(expected.get())
            .return_cas();
        let result = self.store(set, key, value).await?;
        conditional(&result, "ms")?;
        revision(result.cas)
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        let get = Get::new(check_key(key)?).touch(ttl(at)).without_value();
        let result = self.client.run(get).await.map_err(failed)?;
        if result.hit() {
            Ok(())
        } else {
            Err(StoreError::UnknownId)
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.client
            .run(Delete::new(check_key(key)?))
            .await
            .map_err(failed)
            .map(drop)
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        expected: Revision,
    ) -> Result<(), StoreError> {
        let key = check_key(key)?;
        if expected.get() == 0 {
            return Err(self.at_no_revision(key).await);
        }
        let delete = Delete::new(key).compare_cas(expected.get());
        let result = self.client.run(delete).await.map_err(failed)?;
        conditional(&result, "md")
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
