//! `RedisStore`: sessions in Redis or Redis Cluster, one round trip per operation a request makes.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use session_redis::RedisStore;
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let cluster = RedisStore::connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").await?;
//! let patient = RedisStore::builder("redis://127.0.0.1:6379")
//!     .timeout(Duration::from_secs(2))
//!     .connect()
//!     .await?;
//! let client = redis::Client::open("redis://127.0.0.1:6379")?; // one the app already has
//! let shared = RedisStore::from_client(client).connect().await?;
//! # Ok(()) }
//! ```
//!
//! # Setting it up
//! Every store that takes a URL is set up the same way: [`RedisStore::connect`] with a URL
//! and the default settings, or a builder, finished by
//! [`connect`](RedisStoreBuilder::connect), that starts from a URL
//! ([`RedisStore::builder`]) or from a client the application already has
//! ([`RedisStore::from_client`], [`RedisStore::from_cluster_client`]). `connect` sends a
//! `PING`, so a wrong address fails at start-up. Redis expires sessions by itself: there is
//! no cleanup to run.
//!
//! # Commands
//! | operation | command | reply checked |
//! |---|---|---|
//! | `load` | `GET key` | nil = absent |
//! | `load_and_touch` (refresh on read) | `GETEX key PXAT ms` | nil = absent |
//! | `create` | `SET key <rev><value> NX PXAT ms` | nil = `DuplicateId` |
//! | `update_loaded` (how a request writes back) | `SET key <new rev><value> IFEQ <rev><loaded value> GET PXAT ms`, or `update`'s script on a server without `IFEQ` | the loaded value, or this write's own = written; another bulk = `Conflict`; nil, confirmed by a `GET key` (some servers answer nil for a refused write too) = `UnknownId` |
//! | `update` | `EVALSHA <sha1> 1 key <rev> <new rev><value> ms` | nil = `UnknownId`; this write's own value = written; another bulk = `Conflict` |
//! | `touch` | `PEXPIREAT key ms` | 0 = `UnknownId` |
//! | `delete` | `DEL key` | |
//! | `delete_if_unchanged` | `EVALSHA <sha1> 1 key <rev>` | nil = `UnknownId`; bulk = `Conflict` |
//! | `create_bound` | `MULTI`, `SADD user key`, `SET key ... NX PXAT ms`, `EXEC` (cluster: `SADD`, then `SET`, then `SADD` again) | nil = `DuplicateId`, then `SREM` of an entry it added |
//! | `unbind` | `SREM user key` | |
//! | `list_bound` | `SMEMBERS user`, then `GET key` and `PTTL key` per member, `SREM user <gone keys>` (cluster: then `EXISTS key` per gone key, `SADD user <keys that exist>`) | nil or -2 = gone |
//! | `count` | `SCAN <cursor> MATCH <prefix>* COUNT 1000` until the cursor is 0, on each master | |
//! | `scan` | `SCAN` steps, then `GET key` and `PTTL key` per key found | |
//!
//! `<rev>` is a revision as 16 hex digits (`create` writes 1, an update a random one). An
//! `update` never creates a record, so a deleted session is never brought back; a
//! `Conflict` carries the current record (the bulk string), read by the same command (see
//! below). An update's revision is random rather than the next number so that a write the
//! cluster client sends again after a dropped connection lost its reply (it retries such
//! commands) recognizes its own record, instead of taking it for another request's and
//! merging its changes into it a second time (an `update` closure run twice). Only when
//! another request writes between the first send and the resend is the resend a real
//! conflict, and its changes merged again.
//!
//! Keys are `<prefix><SHA-256 of the id>` (`session:` by default; see
//! `session_core::store::KeyScheme`), so `redis-cli --scan --pattern 'session:*'` lists
//! one key per live session, with a TTL equal to its remaining idle lifetime, and no key
//! is a usable cookie. Redis enforces the idle expiry; the absolute timeout is checked on
//! read.
//!
//! # Users' sessions
//! A user's index is a Redis set under `<prefix>user:<SHA-256 of the user id>` whose
//! members are the keys of the user's sessions. It has no TTL, as a session's expiry
//! moves on every touch without a write to the index; `list_bound` reads each member's
//! value and TTL without touching it and removes the members whose key is gone. On a
//! single server `create_bound` adds the entry and creates the record in one `MULTI`
//! transaction, one round trip; on a cluster the set and the record have different slots,
//! so the entry is added first, the record created by a second command, and the entry
//! added again by a third. A listing of that user that runs between the first two finds
//! the record absent and prunes the entry; it then checks the keys it pruned again and
//! puts back those that exist now, so that, with the create's second `SADD`, a live
//! session never drops out of its user's index. `count` and `scan` walk the keys with
//! `SCAN ... MATCH <prefix>*` (glob characters of the prefix escaped), on every master of
//! a cluster in turn: a scan cursor is Redis's cursor, prefixed on a cluster with the
//! lowest slot of the master it is on (`<slot>:<cursor>`). A page takes `SCAN` steps until it holds `limit` sessions or the
//! keys run out, so a prefix that few keys match costs several round trips per page. As
//! with `SCAN` itself, a session that lives through a whole scan is listed at least once,
//! possibly twice, and `count` can count a key twice while Redis resizes its key table.
//!
//! # Performance
//! Entering a script costs Redis several times what a `SET` costs, which shows as
//! throughput wherever Redis's CPU is the limit: prefer Valkey 8.1+ or Redis 8.4+ for
//! sessions that change on most requests. The native write sends the loaded record along
//! for the comparison and gets it back, so a write moves about three times the session's
//! size over the network, where the script moves it once: for sessions of many kilobytes
//! on a slow link, that is the price of the native command. The repository's
//! `docs/performance.md` has the figures.
//!
//! # Stored values and revisions
//! A value is the record's revision as 16 lowercase hex digits followed directly by the
//! record (the encoded session), so `redis-cli GET session:<digest>` shows
//! `0000000000000001{"v":1,...}`. `create` writes revision 1 and each `update` the next
//! one; `touch` and `load_and_touch` leave the value, and so the revision, alone. A value
//! whose first 16 bytes are not all lowercase hex digits is not a record this store wrote:
//! it loads as absent, and an update or a conditional delete of it is `UnknownId` and
//! leaves it as it is. So is a key of another type than a string, which listings skip.
//!
//! # Conditional writes
//! A request writes its session back with `update_loaded`, handing the store the record it
//! loaded. On a server with `SET ... IFEQ` (Valkey 8.1 and later, Redis 8.4 and later)
//! that is one native command, compared on the whole stored value, which holds the
//! revision, so a value that matches is the record the request loaded. With `GET`, a
//! refused write answers the value found, which is the conflict's current record. A
//! server that does not know the option answers a syntax error: the store then sends that
//! write, and every later one, through the script below, and logs so once at `info` (an
//! `INFO` check at connect would miss a server replaced by an older one; the error cannot
//! be missed). Any other error the server answers to the `SET` also sends that one write
//! through the script. A store that switched stays on the script until the process
//! restarts.
//!
//! `update`, `delete_if_unchanged`, and `update_loaded` on a server without `IFEQ` run one
//! Lua script, atomically, on the key's server (its slot's master in a cluster, as the
//! script touches only that key):
//! ```lua
#![doc = include_str!("if_unchanged.lua")]
//! ```
//! The update's new value is framed with the revision after the one it was loaded at. The
//! client sends
//! the script's SHA1 (`EVALSHA`); a server that does not know it (restarted, `SCRIPT
//! FLUSH`, a cluster node that has not run it yet) answers `NOSCRIPT`, and the client then
//! sends the source once with `EVAL`, which also caches it on that server.
//!
//! `INFO commandstats` counts a native conditional write as one `set` (and a `get` when
//! the `SET` answered nil), and the `SET` a server without `IFEQ` refused as a `set` with
//! a failed call. It counts the calls a script makes under their own names, besides the
//! `evalsha` itself: an `update` shows as `evalsha`, `getrange` and `set` (or `get` on a
//! conflict, `exists` when the key is absent), a `delete_if_unchanged` as `evalsha`,
//! `getrange` and `del`; after a `NOSCRIPT`, the failed `evalsha` (also counted in its
//! `failed_calls`) and an `eval` come before them. From the client's side each is one
//! command and one round trip.
//!
//! # Connections
//! Each thread that uses the store gets its own multiplexed connection (or cluster
//! connection), opened on first use and driven by that thread's runtime (a thread that
//! runs another runtime later opens another connection). actix-web runs one
//! single-threaded runtime per worker, so every worker talks to Redis directly, with no
//! hop to another thread per request. A connection that fails (Redis restarted, say) is
//! dropped and the next call opens a new one. While Redis is down, calls fail at once (or
//! within the timeout, 1 s by default, to connect) with `StoreError::Unavailable`, which
//! the middleware answers with 503. A server that keeps the connection open but stops
//! answering (hung, or frozen) is caught by a watchdog per connection rather than a timer
//! per command: once commands have waited a whole timeout with none answered, they fail,
//! between one and one and a half timeouts after they were sent. A command whose caller
//! gave up first (a request timeout shorter than the store's) is not an answer, so such
//! callers cannot keep a dead connection in use; a connection left without answers for a
//! timeout after one is replaced on its next use.
//!
//! Why per thread: one connection shared by every worker would put a hop to the thread
//! that drives it on every request, which costs a large share of the throughput (measured
//! in the repository's `docs/performance.md`).

mod connection;
mod target;
mod users;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::cluster::ClusterClient;
use redis::{
    Arg, Cmd, ErrorKind, FromRedisValue, RedisError, RedisWrite, ServerErrorKind, ToRedisArgs,
    Value,
};
use session_core::store::time::unix_millis;
use session_core::store::{
    Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey, UserKey,
};

use crate::connection::{cached, forget, remember, Connection};
use crate::target::Target;
pub use crate::target::UrlError;

const BACKEND: &str = "redis";

/// How long a command or a connection attempt may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sessions in Redis. Cloning is cheap; clones share their per-thread connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Identifies this store's connections in each thread's cache.
    id: u64,
    target: Target,
    /// Set once a server refused `SET ... IFEQ` (Redis before 8.4, Valkey before 8.1):
    /// conditional writes then run the script.
    scripted: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.target {
            Target::Single(..) => "single",
            Target::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisStore`]: made by [`RedisStore::builder`] from a URL, or by
/// [`RedisStore::from_client`] or [`RedisStore::from_cluster_client`] from a client,
/// and finished by [`connect`](RedisStoreBuilder::connect).
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    source: Source,
    timeout: Duration,
}

/// Where a builder's store finds Redis; the clients boxed, as they are large and rare.
#[derive(Clone)]
enum Source {
    Url(String),
    Client(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// The URL can carry a password: its user-info part is left out.
impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Url(url) => without_credentials(url),
            Source::Client(_) => "a redis::Client".to_owned(),
            Source::Cluster(_) => "a redis::cluster::ClusterClient".to_owned(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("source", &source)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` without what can hold credentials: everything before the last `@` (a password
/// may hold `/`, `?` or `#` unescaped) and the query (a Unix socket URL takes its password
/// there) are replaced by `..`.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "..".to_owned();
    };
    let (user_info, rest) = match rest.rsplit_once('@') {
        Some((_, host)) => ("..@", host),
        None => ("", rest),
    };
    match rest.split_once('?') {
        Some((before, _)) => format!("{scheme}://{user_info}{before}?.."),
        None => format!("{scheme}://{user_info}{rest}"),
    }
}

impl RedisStoreBuilder {
    /// How long a connection attempt may take, and how long a connection may leave
    /// commands unanswered, before they fail with `StoreError::Unavailable`. On a single
    /// server, waiting commands fail after one to one and a half timeouts of silence (see
    /// the crate docs); a cluster connection times out each command. A client given to
    /// [`RedisStore::from_cluster_client`] keeps the timeouts it was built with.
    ///
    /// # Default
    /// [`DEFAULT_TIMEOUT`], 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and pings the server, so a wrong address fails at start-up.
    ///
    /// # Errors
    /// `StoreError::Backend` for a URL this crate cannot use ([`UrlError`]),
    /// `StoreError::Unavailable` if the server cannot be reached within the timeout.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build_lazy()?;
        store.query::<String>(&redis::cmd("PING")).await?;
        Ok(store)
    }

    /// Checks the URL without connecting; the first operation connects.
    ///
    /// # Errors
    /// `StoreError::Backend` for a URL this crate cannot use ([`UrlError`]).
    pub fn build_lazy(self) -> Result<RedisStore, StoreError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let target = match self.source {
            Source::Url(url) => {
                Target::parse(&url, self.timeout).map_err(|e| StoreError::backend(BACKEND, e))?
            }
            Source::Client(client) => Target::single(*client, self.timeout),
            Source::Cluster(client) => Target::Cluster(*client),
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                target,
                scripted: AtomicBool::new(false),
            }),
        })
    }
}

impl RedisStore {
    /// Connects to `url` with the default settings: `redis://host:port/db`,
    /// `rediss://...` (feature `tls`), or `redis+cluster://host:port,host:port,...`.
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for a store at `url`, finished by [`connect`](RedisStoreBuilder::connect).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        Self::with_source(Source::Url(url.into()))
    }

    /// A builder for a store on a client the application already has, finished by
    /// [`connect`](RedisStoreBuilder::connect). The store opens its own connections from
    /// it, one per thread (see the crate docs).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_redis::RedisStore;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let store = RedisStore::from_client(client.clone()).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_client(client: redis::Client) -> RedisStoreBuilder {
        Self::with_source(Source::Client(Box::new(client)))
    }

    /// A builder for a store on a Redis Cluster client the application already has,
    /// finished by [`connect`](RedisStoreBuilder::connect). The client's own connection
    /// and response timeouts apply, not [`RedisStoreBuilder::timeout`].
    pub fn from_cluster_client(client: ClusterClient) -> RedisStoreBuilder {
        Self::with_source(Source::Cluster(Box::new(client)))
    }

    fn with_source(source: Source) -> RedisStoreBuilder {
        RedisStoreBuilder {
            source,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    async fn connection(&self) -> Result<Connection, StoreError> {
        if let Some(connection) = cached(self.inner.id) {
            return Ok(connection);
        }
        // Boxed: connecting is rare, and its future is large; inline, it would make every
        // operation's future large too, and each request allocates one.
        let connection = Box::pin(self.inner.target.connect())
            .await
            .map_err(|e| self.failed(e))?;
        remember(self.inner.id, connection.clone());
        Ok(connection)
    }

    /// Sends one command on this thread's connection.
    async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        connection.query(command).await.map_err(|e| self.failed(e))
    }

    /// Classifies an error; a connection-level one also drops this thread's connection so
    /// that the next call reconnects.
    fn failed(&self, error: RedisError) -> StoreError {
        let connection_lost = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error();
        if connection_lost {
            forget(self.inner.id);
            StoreError::unavailable(BACKEND, error)
        } else {
            StoreError::backend(BACKEND, error)
        }
    }
}

/// The most bytes a millisecond timestamp takes as a command argument.
const TIMESTAMP_LEN: usize = 20;

/// The bytes of the revision in front of every stored record.
const REVISION_LEN: usize = 16;

/// The script behind `update` and `delete_if_unchanged` (see the crate docs).
const IF_UNCHANGED: &str = include_str!("if_unchanged.lua");

/// The SHA1 of [`IF_UNCHANGED`], which `EVALSHA` names it by; a test checks it against the
/// one Redis computes.
const IF_UNCHANGED_SHA1: &str = "0617969d724d95876a44a19b58da3a0a49a7c1ce";

/// `name key`, with room for `more_args` further arguments of `more_bytes` in all: building
/// a command then allocates each of its two buffers once, instead of growing them per
/// argument on every request.
fn command(name: &str, key: &StoreKey, more_args: usize, more_bytes: usize) -> Cmd {
    let bytes = name.len() + key.as_str().len() + more_bytes;
    let mut command = Cmd::with_capacity(2 + more_args, bytes);
    command.arg(name).arg(key.as_str());
    command
}

/// `SET key <revision><value> NX PXAT ms`.
fn create(key: &StoreKey, value: &[u8], expires_at: SystemTime) -> Cmd {
    let more_bytes = REVISION_LEN + value.len() + "NX".len() + "PXAT".len() + TIMESTAMP_LEN;
    let mut command = command("SET", key, 4, more_bytes);
    command
        .arg(Framed(Revision::FIRST, value))
        .arg("NX")
        .arg("PXAT")
        .arg(pxat(expires_at));
    command
}

/// `SET key <revision+value> IFEQ <loaded revision+value> GET PXAT ms`: the native
/// conditional write of Valkey 8.1 and Redis 8.4, which answers the value it found.
fn set_if_equal(key: &StoreKey, value: Framed<'_>, loaded: Framed<'_>, at: SystemTime) -> Cmd {
    let options = "IFEQ".len() + "GET".len() + "PXAT".len();
    let more_bytes = 2 * REVISION_LEN + value.1.len() + loaded.1.len() + options + TIMESTAMP_LEN;
    let mut command = command("SET", key, 6, more_bytes);
    command
        .arg(value)
        .arg("IFEQ")
        .arg(loaded)
        .arg("GET")
        .arg("PXAT")
        .arg(pxat(at));
    command
}

/// `EVALSHA <sha1> 1 key <expected> [<revision+value> ms]`: the conditional-write script
/// on `key`, with a new value for an update, without for a delete.
fn if_unchanged(
    key: &StoreKey,
    expected: Revision,
    write: Option<(Framed<'_>, SystemTime)>,
) -> Cmd {
    let (more_args, more_bytes) = match write {
        Some((value, _)) => (2, REVISION_LEN + value.1.len() + TIMESTAMP_LEN),
        None => (0, 0),
    };
    let bytes = "EVALSHA".len() + IF_UNCHANGED_SHA1.len() + 1 + key.as_str().len() + REVISION_LEN;
    let mut command = Cmd::with_capacity(5 + more_args, bytes + more_bytes);
    command
        .arg("EVALSHA")
        .arg(IF_UNCHANGED_SHA1)
        .arg(1)
        .arg(key.as_str())
        .arg(&hex(expected)[..]);
    if let Some((value, expires_at)) = write {
        command.arg(value).arg(pxat(expires_at));
    }
    command
}

/// The `EVAL` of the script's source with the arguments of `evalsha`, for a server that
/// does not know the script by its SHA1.
fn eval(evalsha: &Cmd) -> Cmd {
    let args = || {
        evalsha.args_iter().skip(2).filter_map(|arg| match arg {
            Arg::Simple(arg) => Some(arg),
            // `if_unchanged` adds no cursor argument.
            _ => None,
        })
    };
    let bytes = "EVAL".len() + IF_UNCHANGED.len() + args().map(<[u8]>::len).sum::<usize>();
    let mut eval = Cmd::with_capacity(2 + args().count(), bytes);
    eval.arg("EVAL").arg(IF_UNCHANGED);
    for arg in args() {
        eval.arg(arg);
    }
    eval
}

/// A record as stored: its revision in hex, then its bytes, in one argument written straight
/// into the command's buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Framed<'a>(Revision, &'a [u8]);

impl ToRedisArgs for Framed<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // A command's buffer is a `Vec`, to which writing cannot fail.
        let _ = arg.write_all(&hex(self.0));
        let _ = arg.write_all(self.1);
    }
}

impl Framed<'_> {
    /// Whether `stored` is this record as stored.
    fn is(&self, stored: &[u8]) -> bool {
        stored.len() == REVISION_LEN + self.1.len()
            && stored[..REVISION_LEN] == hex(self.0)
            && stored[REVISION_LEN..] == *self.1
    }
}

/// The revision of the next write of a record now at `current`: drawn at random, not
/// counted on from it, so that a write the cluster client sent again after losing its
/// reply (it retries on a dropped connection) finds its own record, not one another
/// request wrote at the same count, and is not merged into itself a second time.
fn fresh_revision(current: Revision) -> Revision {
    loop {
        // Each `RandomState` has keys of its own (seeded from the operating system once per
        // thread, then stepped), so each hashes nothing to another number.
        let number = RandomState::new().hash_one(());
        if number != 0 && number != current.get() {
            return Revision::new(number);
        }
    }
}

/// A revision as 16 lowercase hex digits.
fn hex(revision: Revision) -> [u8; REVISION_LEN] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let number = revision.get();
    let mut out = [0; REVISION_LEN];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((number >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// The revision in front of a stored value, or `None` if the value does not start with 16
/// lowercase hex digits (not a record this store wrote).
fn parse_revision(value: &[u8]) -> Option<Revision> {
    let prefix = value.get(..REVISION_LEN)?;
    let mut number = 0u64;
    for &byte in prefix {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        number = (number << 4) | u64::from(digit);
    }
    Some(Revision::new(number))
}

/// A stored value as a record, the revision taken off its front in place; `None` if it has
/// none, so that a value this store did not write reads as absent.
fn unframe(mut value: Vec<u8>) -> Option<Loaded> {
    let revision = parse_revision(&value)?;
    value.drain(..REVISION_LEN);
    Some(Loaded::new(value, revision))
}

/// Whether Redis does not know the script by its SHA1.
fn is_noscript(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Whether the key holds another type than a string: not a record of this store.
fn is_wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE")
}

/// Whether a server refused a command for an option it does not know, as servers without
/// `SET ... IFEQ` answer it.
fn is_unknown_option(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
        && error
            .detail()
            .is_some_and(|detail| detail.contains("syntax error"))
}

/// A reply of the conditional-write script that none of its branches returns.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis to a conditional write")]
struct UnexpectedReply;

/// Redis refuses a zero or negative expiry time.
fn pxat(at: SystemTime) -> u64 {
    unix_millis(at).max(1)
}

impl RedisStore {
    /// Runs the conditional-write script (`command`, from [`if_unchanged`]) on the key's
    /// server: `Ok` if it wrote or deleted, or if the key holds `own`, the value this very
    /// command writes (a command sent again after its reply was lost).
    async fn if_unchanged(&self, command: &Cmd, own: Option<Framed<'_>>) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let reply = match connection.query::<Value>(command).await {
            // Boxed: the fallback is rare, and its future would otherwise enlarge every
            // conditional write's.
            Err(error) if is_noscript(&error) => {
                Box::pin(connection.query::<Value>(&eval(command))).await
            }
            reply => reply,
        };
        match reply {
            Ok(reply) => answer(reply, own),
            Err(error) if is_wrong_type(&error) => Err(StoreError::UnknownId),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// `update` to the revision `next`, by the conditional-write script.
    async fn update_to(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
        next: Revision,
    ) -> Result<Revision, StoreError> {
        let own = Framed(next, value);
        let command = if_unchanged(key, revision, Some((own, at)));
        self.if_unchanged(&command, Some(own)).await?;
        Ok(next)
    }

    /// Sends a `GET` or a `GETEX`: the stored value, with a key of another type absent, as
    /// this store never writes one.
    async fn query_value(&self, command: &Cmd) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection().await?;
        match connection.query(command).await {
            Ok(value) => Ok(value),
            Err(error) if is_wrong_type(&error) => Ok(None),
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// What the conditional-write script's reply means, for a write of `own` (none for a
/// delete): the key already holding `own` is this write, done by an earlier send.
fn answer(reply: Value, own: Option<Framed<'_>>) -> Result<(), StoreError> {
    match reply {
        Value::Okay | Value::Int(1) => Ok(()),
        Value::Nil | Value::Int(0) => Err(StoreError::UnknownId),
        Value::BulkString(current) if own.is_some_and(|own| own.is(&current)) => Ok(()),
        Value::BulkString(current) => Err(refused(current)),
        _ => Err(StoreError::backend(BACKEND, UnexpectedReply)),
    }
}

/// A conditional write refused because the key holds `current`: a conflict with that
/// record, or, for a value that is not a record, absent, as `load` finds it.
fn refused(current: Vec<u8>) -> StoreError {
    match unframe(current) {
        Some(current) => StoreError::conflict_with(current),
        None => StoreError::UnknownId,
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let value = self.query_value(&command("GET", key, 0, 0)).await?;
        Ok(value.and_then(unframe))
    }

    fn touches_on_load(&self) -> bool {
        true
    }

    async fn load_and_touch(
        &self,
        key: &StoreKey,
        expires_at: SystemTime,
    ) -> Result<Option<Loaded>, StoreError> {
        let mut command = command("GETEX", key, 2, "PXAT".len() + TIMESTAMP_LEN);
        command.arg("PXAT").arg(pxat(expires_at));
        let value = self.query_value(&command).await?;
        Ok(value
            .and_then(unframe)
            .map(|loaded| loaded.with_expiry(expires_at)))
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        // `SET ... NX` answers OK or nil; `()` reads the OK without allocating for it.
        let reply: Option<()> = self.query(&create(key, value, at)).await?;
        reply
            .map(|()| Revision::FIRST)
            .ok_or(StoreError::DuplicateId)
    }

    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        self.update_to(key, value, at, revision, fresh_revision(revision))
            .await
    }

    async fn update_loaded(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        loaded: &Loaded,
    ) -> Result<Revision, StoreError> {
        let revision = loaded.revision();
        if self.inner.scripted.load(Ordering::Relaxed) {
            return self.update(key, value, at, revision).await;
        }
        let next = fresh_revision(revision);
        let own = Framed(next, value);
        let loaded = Framed(revision, loaded.value());
        let command = set_if_equal(key, own, loaded, at);
        let mut connection = self.connection().await?;
        match connection.query::<Option<Vec<u8>>>(&command).await {
            // The loaded record replaced; or this very write, sent again after its reply
            // was lost.
            Ok(Some(found)) if loaded.is(&found) || own.is(&found) => Ok(next),
            Ok(Some(current)) => Err(refused(current)),
            // Absent; or, on a server whose `GET` answers nil when the condition fails,
            // another record (or this write), which a read tells apart. Boxed: a rare path.
            Ok(None) => match Box::pin(self.load(key)).await? {
                Some(current) if Framed(current.revision(), current.value()) == own => Ok(next),
                Some(current) => Err(StoreError::conflict_with(current)),
                None => Err(StoreError::UnknownId),
            },
            Err(error) if is_wrong_type(&error) => Err(StoreError::UnknownId),
            // Refused, so nothing was written: the script does this write.
            Err(error) if matches!(error.kind(), ErrorKind::Server(_)) => {
                let first =
                    is_unknown_option(&error) && !self.inner.scripted.swap(true, Ordering::Relaxed);
                if first {
                    tracing::info!(
                        backend = BACKEND,
                        "the server has no SET ... IFEQ (Valkey 8.1, Redis 8.4); \
                         conditional writes run a Lua script, which costs the server more"
                    );
                }
                // At the same new revision: the refused command may have been a resend of
                // one that was applied, whose record the script must recognise.
                Box::pin(self.update_to(key, value, at, revision, next)).await
            }
            Err(error) => Err(self.failed(error)),
        }
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        let mut command = command("PEXPIREAT", key, 1, TIMESTAMP_LEN);
        command.arg(pxat(at));
        match self.query::<i64>(&command).await? {
            1 => Ok(()),
            _ => Err(StoreError::UnknownId),
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.query::<i64>(&command("DEL", key, 0, 0))
            .await
            .map(drop)
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        self.if_unchanged(&if_unchanged(key, revision, None), None)
            .await
    }

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.create_and_bind(key, value, at, user).await
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        self.remove_binding(user, key).await
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        self.bound_records(user).await
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        self.count_sessions(prefix).await
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.scan_page(prefix, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builders_debug_output_has_no_password() {
        for url in [
            "redis://:hunter2-password@127.0.0.1:6379/0",
            "rediss://admin:hunter2-password@cache.example:6380",
            "redis+unix:///run/redis.sock?db=1&pass=hunter2-password",
            "redis://:hun/ter?2#pass@127.0.0.1:6379",
            "redis+cluster://admin:hunter2@10.0.0.1:7000,10.0.0.2:7000",
        ] {
            let shown = format!("{:?}", RedisStore::builder(url));
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("hun/ter"), "{shown}");
            assert!(!shown.contains("admin"), "{shown}");
        }
        let shown = format!("{:?}", RedisStore::builder("redis://127.0.0.1:6379/2"));
        assert!(shown.contains("redis://127.0.0.1:6379/2"), "{shown}");
    }

    #[test]
    fn revisions_round_trip_through_their_hex_prefix() {
        for number in [0, 1, 0xa, 0xdead_beef, u64::MAX - 1, u64::MAX] {
            let revision = Revision::new(number);
            let mut value = hex(revision).to_vec();
            assert_eq!(value, format!("{number:016x}").into_bytes());
            value.extend_from_slice(b"{}");
            let loaded = unframe(value).unwrap();
            assert_eq!((loaded.revision(), loaded.value()), (revision, &b"{}"[..]));
        }
    }

    #[test]
    fn values_without_a_lowercase_hex_prefix_are_not_records() {
        let foreign: [&[u8]; 6] = [
            b"{\"v\":1,\"data\":{}}",
            b"\x81\xa1v\x01",
            b"",
            b"0123456789abcde",
            b"0123456789ABCDEF{}",
            b"+123456789abcdef{}",
        ];
        for value in foreign {
            assert_eq!(unframe(value.to_vec()), None, "{value:?}");
        }
    }

    #[test]
    fn a_conflict_with_this_very_write_is_the_write_done() {
        let own = Framed(Revision::new(0xbeef), b"{\"n\":2}");
        let mut stored = hex(Revision::new(0xbeef)).to_vec();
        stored.extend_from_slice(b"{\"n\":2}");
        assert!(answer(Value::BulkString(stored.clone()), Some(own)).is_ok());
        // The same bytes another request wrote at another revision: a conflict.
        let mut other = hex(Revision::new(0xcafe)).to_vec();
        other.extend_from_slice(b"{\"n\":2}");
        let refused = answer(Value::BulkString(other), Some(own));
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{refused:?}"
        );
        // A delete has no record of its own to find.
        let refused = answer(Value::BulkString(stored), None);
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn fresh_revisions_are_new_every_time() {
        let current = Revision::new(7);
        let drawn: std::collections::HashSet<u64> = (0..100_000)
            .map(|_| fresh_revision(current).get())
            .collect();
        assert_eq!(drawn.len(), 100_000, "a revision was drawn twice");
        assert!(!drawn.contains(&0) && !drawn.contains(&7));
    }

    #[test]
    fn a_framed_value_is_one_argument() {
        let mut command = Cmd::new();
        command.arg(Framed(Revision::new(0x2a), b"{}"));
        assert_eq!(
            command.get_packed_command(),
            b"*1\r\n$18\r\n000000000000002a{}\r\n"
        );
    }

    /// Redis names the script by the SHA1 of its source; a stale constant would make every
    /// conditional write pay for a `NOSCRIPT` round trip.
    #[tokio::test]
    async fn the_script_hash_is_the_one_redis_computes() {
        let url = std::env::var("SESSION_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let client = redis::Client::open(url).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let sha1: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(IF_UNCHANGED)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(sha1, IF_UNCHANGED_SHA1);
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
