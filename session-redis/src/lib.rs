//! `RedisStore`: sessions in Redis or Redis Cluster, one command per store operation.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use session_redis::RedisStore;
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let cluster = RedisStore::connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").await?;
//! # Ok(()) }
//! ```
//!
//! # Commands
//! | operation | command | reply checked |
//! |---|---|---|
//! | `load` | `GET key` | nil = absent |
//! | `load_and_touch` (refresh on read) | `GETEX key PXAT ms` | nil = absent |
//! | `create` | `SET key value NX PXAT ms` | nil = `DuplicateId` |
//! | `update` | `SET key value XX PXAT ms` | nil = `UnknownId` (never a resurrection) |
//! | `touch` | `PEXPIREAT key ms` | 0 = `UnknownId` |
//! | `delete` | `DEL key` | |
//!
//! Keys are `<prefix><id>` (`session:` by default), so `redis-cli --scan --pattern
//! 'session:*'` lists one key per live session, with a TTL equal to its remaining idle
//! lifetime. Redis enforces the idle expiry; the absolute timeout is checked on read.
//!
//! # Connections
//! Each thread that uses the store gets its own multiplexed connection (or cluster
//! connection), opened on first use and driven by that thread's runtime. actix-web runs one
//! single-threaded runtime per worker, so every worker talks to Redis directly, with no
//! hop to another thread per request. A connection that fails (Redis restarted, say) is
//! dropped and the next call opens a new one. While Redis is down, calls fail at once (or
//! within the timeout, 1 s by default, to connect) with `StoreError::Unavailable`, which
//! the middleware answers with 503. A server that keeps the connection open but stops
//! answering (hung, or frozen) is caught by a watchdog per connection rather than a timer
//! per command: once commands have waited a whole timeout with none answered, they fail,
//! between one and one and a half timeouts after they were sent.
//!
//! Why per thread: `bench-baseline` serving `/read` from Redis by hand, `WORKERS=1` pinned
//! to one CPU, `wrk -t1 -c32` on the other, three alternating 5-second runs each: with a
//! connection per worker opened on the worker's runtime, 55,007 / 57,403 / 40,568 req/s
//! (median 55,007); with one connection opened in `main()` and shared
//! (`BASELINE_SHARED_CONNECTION=1`), 41,053 / 33,837 / 36,315 (median 36,315): a third of
//! the throughput lost to the thread hop on every request.

mod connection;
mod target;
#[cfg(feature = "test-util")]
pub mod test_util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::{Cmd, FromRedisValue, RedisError};
use session_core::time::unix_millis;
use session_core::{Loaded, Store, StoreError, StoreKey};

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

/// Configures a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    timeout: Duration,
}

impl RedisStoreBuilder {
    /// How long a connection attempt may take, and how long a connection may leave
    /// commands unanswered, before they fail with `StoreError::Unavailable` (default 1 s).
    /// On a single server, waiting commands fail after one to one and a half timeouts of
    /// silence (see the crate docs); a cluster connection times out each command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and pings the server, so a wrong address fails at start-up.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build_lazy()?;
        store.query::<String>(&redis::cmd("PING")).await?;
        Ok(store)
    }

    /// Checks the URL without connecting; the first operation connects.
    pub fn build_lazy(self) -> Result<RedisStore, StoreError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let target =
            Target::parse(&self.url, self.timeout).map_err(|e| StoreError::backend(BACKEND, e))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                target,
            }),
        })
    }
}

impl RedisStore {
    /// Connects to `url` with the default settings: `redis://host:port/db`,
    /// `rediss://...` (feature `tls`), or `redis+cluster://host:port,host:port,...`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for a store at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
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

/// `name key`, with room for `more_args` further arguments of `more_bytes` in all: building
/// a command then allocates each of its two buffers once, instead of growing them per
/// argument on every request.
fn command(name: &str, key: &StoreKey, more_args: usize, more_bytes: usize) -> Cmd {
    let bytes = name.len() + key.as_str().len() + more_bytes;
    let mut command = Cmd::with_capacity(2 + more_args, bytes);
    command.arg(name).arg(key.as_str());
    command
}

fn set(key: &StoreKey, value: &[u8], expires_at: SystemTime, condition: &str) -> Cmd {
    let more_bytes = value.len() + condition.len() + "PXAT".len() + TIMESTAMP_LEN;
    let mut command = command("SET", key, 4, more_bytes);
    command
        .arg(value)
        .arg(condition)
        .arg("PXAT")
        .arg(pxat(expires_at));
    command
}

/// Redis refuses a zero or negative expiry time.
fn pxat(at: SystemTime) -> u64 {
    unix_millis(at).max(1)
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let command = command("GET", key, 0, 0);
        let value: Option<Vec<u8>> = self.query(&command).await?;
        Ok(value.map(Loaded::new))
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
        let value: Option<Vec<u8>> = self.query(&command).await?;
        Ok(value.map(|value| Loaded::new(value).with_expiry(expires_at)))
    }

    async fn create(&self, key: &StoreKey, value: &[u8], at: SystemTime) -> Result<(), StoreError> {
        // `SET ... NX` answers OK or nil; `()` reads the OK without allocating for it.
        let reply: Option<()> = self.query(&set(key, value, at, "NX")).await?;
        reply.ok_or(StoreError::DuplicateId)
    }

    async fn update(&self, key: &StoreKey, value: &[u8], at: SystemTime) -> Result<(), StoreError> {
        let reply: Option<()> = self.query(&set(key, value, at, "XX")).await?;
        reply.ok_or(StoreError::UnknownId)
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
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
