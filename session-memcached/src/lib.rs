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
//! | `create_bound` | the index entry (below), then `create`, then the entry checked again | |
//! | `unbind` | the index without the key (below) | absent index or entry: `Ok` |
//! | `list_bound` | `mg index v c`, then `mg key v t` for every entry (one exchange per server) | the value and its remaining TTL, untouched; misses pruned (below) |
//! | `count`, `scan` | none | `StoreError::Unsupported`: memcached cannot list its keys |
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
//! time in the record. TTLs are whole seconds, rounded up (an expiry that has passed ends
//! the item at once); lifetimes over 30 days are sent as absolute Unix times, as the
//! protocol requires, and end in January 2038 at the latest, the last time memcached can
//! express. Keys are `<prefix><id>`, checked against the 250-byte key limit; a session
//! larger than the item size limit (memcached's `-I`, 1 MiB by default: tell the store
//! with [`MemcachedStoreBuilder::max_item_size`]) is refused with `StoreError::TooLarge`
//! before anything is sent. Never tell the store a larger limit than the servers': a
//! server that refuses a write as too large deletes the item it would have replaced, so
//! the session would end.
//!
//! # Users' indexes
//! Memcached has no secondary index, so each user's index is one item of its own under
//! the user's [`UserKey`], holding the keys of the user's sessions, one per line. Every
//! change is a read-modify-write on the item's CAS (`mg index v c`, then `ms index C<cas>`,
//! `ms index ME` when there was no item, or `md index C<cas>` when no key is left), tried
//! again while other writers come first and given up, as a `StoreError::Backend`, after
//! 64 lost attempts. The index is stored with exptime 0 (no expiry): a session's expiry
//! moves with every touch without a write of the index, so the index must not expire
//! before its sessions; entries of expired sessions are pruned by `list_bound`.
//!
//! `create_bound` puts the entry in before it creates the record and checks it again
//! after (on `DuplicateId` it takes out the entry it put in); `list_bound` takes out the entries whose records it found absent in one
//! conditional write, then reads those records again and puts back any that exists now.
//! So a listing that runs between a bound create's two steps never leaves a live session
//! out of its index.
//!
//! Like any memcached item, an index can be evicted under memory pressure, even without
//! an expiry: "log out everywhere" then misses that user's sessions. Size memcached so that
//! it does not evict (its `evictions` statistic stays 0). `count` and `scan` answer
//! `StoreError::Unsupported`, as memcached cannot list its keys, so there is no admin
//! listing of all sessions on this store.
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
use session_core::store::{
    Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey, UserKey,
};

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

/// How many connections to each server the pool keeps open between calls by default: as
/// many as the requests a busy process has in flight, so that none is closed after a call
/// only to be opened again for the next.
pub const DEFAULT_IDLE_CONNECTIONS: usize = 64;

/// Configures a [`MemcachedStore`]: made by [`MemcachedStore::builder`] from a URL or by
/// [`MemcachedStore::from_client`] from a client, and finished by
/// [`connect`](MemcachedStoreBuilder::connect).
#[derive(Clone)]
#[must_use]
pub struct MemcachedStoreBuilder {
    source: Source,
    timeout: Duration,
    max_item_size: usize,
    idle_connections: usize,
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
            .field("idle_connections", &self.idle_connections)
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
    /// Never more than the smallest `-I` of the servers: memcached deletes the stored item
    /// when it refuses a write as too large, so a session that outgrew the server's limit
    /// would be ended instead of kept as it was.
    ///
    /// # Default
    /// [`DEFAULT_MAX_ITEM_SIZE`], 1 MiB, memcached's own default.
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// How many connections to each server stay open between calls. A call takes an idle
    /// connection or opens one; one more than this many idle is closed after its call, so
    /// a process with more calls in flight than this opens and closes a connection for
    /// many of its calls. A client given to [`MemcachedStore::from_client`] keeps its own
    /// setting.
    ///
    /// # Default
    /// [`DEFAULT_IDLE_CONNECTIONS`], 64 (the `memcache` crate's own default is 8).
    ///
    /// # Performance
    /// Opening a connection costs both the process and memcached far more than a call on
    /// an open one; with too few kept, a busy process spends its time connecting (measured
    /// in the repository's `docs/performance.md`).
    pub fn idle_connections(mut self, connections: usize) -> Self {
        self.idle_connections = connections;
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
                    .max_idle(self.idle_connections)
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
    #[error("a user's index kept changing under concurrent writes; nothing was written")]
    Contended,
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

/// An absolute time memcached reads as already passed: the first one past the relative
/// range.
const PASSED: Duration = Duration::from_secs(MAX_RELATIVE_TTL.as_secs() + 1);

/// Whole seconds from now until `at`, rounded up; beyond 30 days, `at` itself (no later
/// than [`LATEST_EXPIRY`]), and a time in 1970 when `at` has passed, computed once here so
/// that the time it takes to send cannot push it past what memcached accepts.
fn ttl(at: SystemTime) -> Ttl {
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    if left.is_zero() {
        // A relative TTL is at least one second, which would serve an expired record.
        return Ttl::at(SystemTime::UNIX_EPOCH + PASSED);
    }
    if left > MAX_RELATIVE_TTL {
        return Ttl::at(at.min(SystemTime::UNIX_EPOCH + LATEST_EXPIRY));
    }
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Ttl::secs(u32::try_from(secs).unwrap_or(u32::MAX))
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
    check_str(key.as_str())
}

fn check_str(key: &str) -> Result<&str, StoreError> {
    if is_valid_key(key) {
        Ok(key)
    } else {
        Err(StoreError::backend(BACKEND, KeyError))
    }
}

fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.bytes().all(|b| b.is_ascii_graphic())
}

/// How many times a change of a user's index is tried again after another writer changed
/// the index first: every lost attempt means another write went through, so this bounds
/// the concurrent logins of one user that are sure to succeed.
const INDEX_ATTEMPTS: usize = 64;

/// A user's index as read: its session keys, and the item's CAS (`None`: no item).
#[derive(Default)]
struct Index {
    keys: Vec<String>,
    cas: Option<u64>,
}

impl Index {
    /// The keys of an index item, one per line; lines that are not keys (which only
    /// another writer could have put there) are dropped at the next write.
    fn parse(value: &[u8], cas: Option<u64>) -> Self {
        let mut keys: Vec<String> = Vec::new();
        for line in value.split(|&b| b == b'\n') {
            if let Ok(key) = std::str::from_utf8(line) {
                if is_valid_key(key) && !keys.iter().any(|k| k == key) {
                    keys.push(key.to_owned());
                }
            }
        }
        Self { keys, cas }
    }
}

/// The value of an index item: its keys, each followed by a newline.
fn index_value(keys: &[String]) -> Vec<u8> {
    let mut value = Vec::with_capacity(keys.iter().map(|k| k.len() + 1).sum());
    for key in keys {
        value.extend_from_slice(key.as_bytes());
        value.push(b'\n');
    }
    value
}

/// When a record whose remaining TTL memcached reports as `ttl` seconds expires; `-1` is
/// an item without expiry, which this crate never writes for a session.
fn expiry_of(ttl: Option<i64>) -> Result<SystemTime, StoreError> {
    match ttl {
        Some(-1) => Ok(SystemTime::UNIX_EPOCH + LATEST_EXPIRY),
        Some(secs) if secs >= 0 => Ok(SystemTime::now() + Duration::from_secs(secs.unsigned_abs())),
        _ => Err(StoreError::backend(BACKEND, Failure::Unexpected("mg"))),
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
            idle_connections: DEFAULT_IDLE_CONNECTIONS,
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
        // Refused here when the configured limit says so. The server's own refusal (a
        // `-I` lower than the limit configured) is the same typed error, but the server
        // has deleted the item by then: `max_item_size` says so.
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

    /// Reads a user's index (`mg key v c`); a miss is an empty index without an item.
    async fn read_index(&self, user: &str) -> Result<Index, StoreError> {
        let result = self.client.run(get_with_cas(user)).await.map_err(failed)?;
        let (hit, cas) = (result.hit(), result.item.cas);
        match result.value.filter(|_| hit) {
            Some(value) => Ok(Index::parse(&value, Some(revision(cas)?.get()))),
            None => Ok(Index::default()),
        }
    }

    /// Replaces the index `read` with `keys`, only if it is still the one read: `add` where
    /// there was no item, `ms C<cas>` where there was, `md C<cas>` when no key is left.
    /// Answers whether the write went through (`false`: another writer came first).
    async fn write_index(
        &self,
        user: &str,
        read: &Index,
        keys: &[String],
    ) -> Result<bool, StoreError> {
        let status = match (read.cas, keys.is_empty()) {
            (None, true) => return Ok(true),
            (Some(cas), true) => {
                let delete = Delete::new(user).compare_cas(cas);
                self.client.run(delete).await.map_err(failed)?.status
            }
            (cas, false) => {
                let value = index_value(keys);
                // Exptime 0: a session's expiry moves with every touch and the index's
                // would not, so the index must not expire before its sessions.
                let set = Set::new(user, &value).ttl(Ttl::NEVER);
                let set = match cas {
                    Some(cas) => set.compare_cas(cas),
                    None => set.add(),
                };
                self.store(set, user, &value).await?.status
            }
        };
        match status {
            MutationStatus::Applied => Ok(true),
            MutationStatus::NotFound
            | MutationStatus::AlreadyExists
            | MutationStatus::CasMismatch => Ok(false),
            _ => Err(StoreError::backend(BACKEND, Failure::Unexpected("ms"))),
        }
    }

    /// Changes a user's index with `change`, which edits the keys and answers whether it
    /// changed anything, in a read-modify-write loop on the item's CAS; `first` is an index
    /// already read, to start from without reading it again. Answers whether it wrote.
    async fn change_index(
        &self,
        user: &str,
        mut first: Option<Index>,
        mut change: impl FnMut(&mut Vec<String>) -> bool + Send,
    ) -> Result<bool, StoreError> {
        for _ in 0..INDEX_ATTEMPTS {
            let read = match first.take() {
                Some(read) => read,
                None => self.read_index(user).await?,
            };
            let mut keys = read.keys.clone();
            if !change(&mut keys) {
                return Ok(false);
            }
            if self.write_index(user, &read, &keys).await? {
                return Ok(true);
            }
        }
        Err(StoreError::backend(BACKEND, Failure::Contended))
    }

    /// Puts `key` in a user's index unless it is there; answers whether it put it there.
    async fn bind(&self, user: &str, key: &str) -> Result<bool, StoreError> {
        self.change_index(user, None, |keys| {
            let absent = !keys.iter().any(|k| k == key);
            if absent {
                keys.push(key.to_owned());
            }
            absent
        })
        .await
    }

    /// Takes `gone` out of a user's index, starting from `first` if it was read already.
    async fn remove(
        &self,
        user: &str,
        gone: &[impl AsRef<str> + Sync],
        first: Option<Index>,
    ) -> Result<(), StoreError> {
        let gone = |key: &String| gone.iter().any(|g| g.as_ref() == key);
        self.change_index(user, first, |keys| {
            let before = keys.len();
            keys.retain(|k| !gone(k));
            keys.len() != before
        })
        .await
        .map(drop)
    }

    /// Reads the records under `keys` without touching them, in one exchange per server:
    /// each as its value and expiry, or `None` when it is absent or expired.
    async fn read_records(&self, keys: &[String]) -> Result<Vec<Option<Listed>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let gets = keys.iter().map(|key| Get::new(key).meta(Meta::NONE.ttl()));
        let results = self.client.run_many(gets).await.map_err(failed)?;
        keys.iter()
            .zip(results)
            .map(|(key, result)| {
                let result = result.map_err(failed)?;
                let hit = result.hit();
                match result.value.filter(|_| hit) {
                    Some(value) => {
                        let expires_at = expiry_of(result.item.ttl)?;
                        let key = StoreKey::from_stored(key.as_str());
                        Ok(Some(Listed::new(key, value, expires_at)))
                    }
                    None => Ok(None),
                }
            })
            .collect()
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

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        let (record, index) = (check_key(key)?, check_str(user.as_str())?);
        // The entry first, so that no live record is ever missing from its index.
        let added = self.bind(index, record).await?;
        let revision = match self.create(key, value, at).await {
            Ok(revision) => revision,
            // The live record there is not this user's unless it was bound before.
            Err(StoreError::DuplicateId) if added => {
                self.remove(index, &[record], None).await?;
                return Err(StoreError::DuplicateId);
            }
            Err(error) => return Err(error),
        };
        // A listing that read the index after the entry came and the record before it did
        // may have pruned the entry meanwhile: the record exists now, so it goes back.
        self.bind(index, record).await?;
        Ok(revision)
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        let (record, index) = (check_key(key)?, check_str(user.as_str())?);
        self.remove(index, &[record], None).await
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let index = check_str(user.as_str())?;
        let read = self.read_index(index).await?;
        let records = self.read_records(&read.keys).await?;
        let mut listed = Vec::with_capacity(records.len());
        let mut absent = Vec::new();
        for (key, record) in read.keys.iter().zip(records) {
            match record {
                Some(record) => listed.push(record),
                None => absent.push(key.clone()),
            }
        }
        if absent.is_empty() {
            return Ok(listed);
        }
        self.remove(index, &absent, Some(read)).await?;
        // A bound create that put its entry in before this read and its record in after
        // it lost the entry to this prune, if it checked the index before the prune:
        // records that exist now go back.
        for (key, record) in absent.iter().zip(self.read_records(&absent).await?) {
            if record.is_some() {
                self.bind(index, key).await?;
            }
        }
        Ok(listed)
    }

    /// Memcached cannot list its keys: [`StoreError::Unsupported`].
    async fn count(&self, _prefix: &str) -> Result<u64, StoreError> {
        Err(StoreError::unsupported(BACKEND, "count"))
    }

    /// Memcached cannot list its keys: [`StoreError::Unsupported`].
    async fn scan(
        &self,
        _prefix: &str,
        _after: Option<&ScanCursor>,
        _limit: usize,
    ) -> Result<ScanPage, StoreError> {
        Err(StoreError::unsupported(BACKEND, "scan"))
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
