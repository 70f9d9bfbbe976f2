//! `SqlStore`: sessions in PostgreSQL, MySQL/MariaDB or SQLite, through sqlx.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use session_sql::SqlStore;
//!
//! let postgres = SqlStore::connect("postgres://postgres@127.0.0.1/app").await?;
//! let mysql = SqlStore::builder().table("web_sessions").connect("mysql://root@127.0.0.1/app").await?;
//! let sqlite = SqlStore::connect("sqlite://sessions.db").await?; // zero setup, like files
//! let _cleanup = sqlite.spawn_cleanup(std::time::Duration::from_secs(600));
//! # Ok(()) }
//! ```
//!
//! # The table
//! Created on first use (idempotently, and safely when several instances start at once),
//! or by your own migrations from [`SqlStore::migration`]:
//!
//! | column | type | |
//! |---|---|---|
//! | `id` | text, primary key | the store key, `session:<id>` |
//! | `data` | bytea / longblob / blob | the encoded session |
//! | `expires_at` | bigint, indexed | Unix milliseconds |
//! | `created_at` | bigint | Unix milliseconds |
//! | `revision` | bigint, default 0 | the record's [`Revision`]: 1 on create, +1 per update; 0 ([`Revision::UNVERSIONED`]) for rows written before the column existed |
//!
//! A table made by an earlier version of this crate, without `revision`, gets the column
//! when the store starts (after a catalog lookup finds it missing, so a table that has it
//! is not altered again), or from [`SqlStore::migration`]; its rows load as unversioned
//! and become versioned at their next update.
//!
//! # One clock: the application's
//! Every time in the table is written and compared in Unix milliseconds from the
//! application's clock, bound as a parameter; the database's clock is never used. Session
//! expiry is computed by the application anyway, BIGINT milliseconds mean the same in all
//! three databases (MySQL's `TIMESTAMP` ends in 2038 and shifts with the session time
//! zone; SQLite has no time type), and the index on `expires_at` serves every query. To
//! read one by eye: `to_timestamp(expires_at / 1000.0)` in PostgreSQL,
//! `FROM_UNIXTIME(expires_at / 1000)` in MySQL.
//!
//! # Statements
//! Each operation is one statement on its usual path, with its row count checked; `now` is
//! bound from the application's clock.
//!
//! | operation | statement |
//! |---|---|
//! | `load` | `SELECT data, expires_at, revision ... WHERE id = ? AND expires_at > now` |
//! | `create` | `INSERT` with `revision = 1` that cannot overwrite (`ON CONFLICT DO NOTHING`, `INSERT IGNORE`, `INSERT OR IGNORE`); only when the id is taken, `UPDATE ... SET ..., revision = 1 WHERE id = ? AND expires_at <= now` takes over the row of an expired session |
//! | `update` | `UPDATE ... SET data = ?, expires_at = ?, revision = expected + 1 WHERE id = ? AND expires_at > now AND revision = expected` |
//! | `delete_if_unchanged` | `DELETE ... WHERE id = ? AND expires_at > now AND revision = expected` |
//! | `touch` | `UPDATE ... SET expires_at = ? WHERE id = ? AND expires_at > now` (the revision stays) |
//! | `delete` | `DELETE ... WHERE id = ?` |
//! | `delete_expired` | `DELETE` of expired rows in batches of 5,000 |
//!
//! So an expired, not yet cleaned-up session never blocks its id, a live one is never
//! overwritten by `create`, and a deleted or expired one is never resurrected. The new
//! revision is computed by the application, so a successful `update` needs no
//! `RETURNING`. Only when a conditional write matches no row does a second statement, the
//! `load` query, tell [`StoreError::UnknownId`] (no live row) from
//! [`StoreError::Conflict`], which then carries the current row.
//!
//! # A database that is down or does not answer
//! The store's timeout ([`SqlStoreBuilder::timeout`], 3 s by default) bounds each round
//! trip to the database: each statement, getting its connection included. One that takes
//! longer fails with [`StoreError::Unavailable`] (answered with 503 by the middleware),
//! whether the database is down, frozen, unreachable or holding a lock the statement
//! waits on. A call that needs two statements (`create`'s insert then take-over, or a
//! conditional write that matched nothing, then the `load` that explains why) may take
//! up to two timeouts, and `delete_expired` up to one per batch. Creating the table at
//! start is bounded by one timeout as a whole. sqlx bounds only the wait for a
//! connection, so the store bounds the statement itself, and drops a connection whose
//! statement it gave up on instead of returning it to the pool, where it would stay taken
//! until the database answered. A statement given up on may still be applied by the
//! database later, as with any answer that was lost. The pool opens new connections as
//! needed, so the store works again as soon as the database does, without a restart.

mod dialect;
mod pool;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::time::{from_unix_millis_i64, unix_millis_i64};
use session_core::{spawn_cleanup, Cleanup, Loaded, Revision, Store, StoreError, StoreKey};

use crate::dialect::{check_name, Queries};
pub use crate::dialect::{Dialect, NameError};
use crate::pool::Arg::{self, Bytes, Int, Text};
pub use crate::pool::SqlPool;

const BACKEND: &str = "sql";

/// Rows removed per `DELETE` by [`Store::delete_expired`].
const DELETE_BATCH: i64 = 5_000;

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessions";

/// Sessions in an SQL database. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SqlPool,
    queries: Queries,
    /// How long a statement may take, its connection included.
    timeout: Duration,
}

/// Configures a [`SqlStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqlStoreBuilder {
    table: String,
    schema: Option<String>,
    create_table: bool,
    timeout: Duration,
}

impl SqlStoreBuilder {
    /// The table (default `sessions`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The schema the table lives in (PostgreSQL only; default: the search path).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether to create the table if it is missing, and add the `revision` column to a
    /// table made by an earlier version (default `true`). Turn it off when your migrations
    /// create it from [`SqlStore::migration`].
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// How long a statement may take, getting its connection included, before it fails
    /// with `StoreError::Unavailable` (default 3 s). It bounds every statement whatever
    /// the pool (a call of two statements may take two timeouts), and creating the table
    /// at start as a whole; for pools made from a URL it is also the pool's acquire
    /// timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens a pool for `url` (`postgres://`, `mysql://`, `sqlite://path`,
    /// `sqlite::memory:`), then creates the table.
    pub async fn connect(self, url: &str) -> Result<SqlStore, StoreError> {
        let pool = SqlPool::connect(url, self.timeout).await?;
        self.with_pool(pool).await
    }

    /// Uses a pool the application already has, then creates the table.
    pub async fn with_pool(self, pool: impl Into<SqlPool>) -> Result<SqlStore, StoreError> {
        let pool = pool.into();
        let dialect = pool.dialect();
        check_name(&self.table).map_err(|e| StoreError::backend(BACKEND, e))?;
        if let Some(schema) = &self.schema {
            check_name(schema).map_err(|e| StoreError::backend(BACKEND, e))?;
            if dialect != Dialect::Postgres {
                return Err(StoreError::backend(BACKEND, SchemaError(dialect)));
            }
        }
        let queries = dialect.queries(&self.table, self.schema.as_deref());
        if self.create_table {
            tokio::time::timeout(self.timeout, pool.create_table(&queries))
                .await
                .map_err(|_| StoreError::unavailable(BACKEND, TimedOut(self.timeout)))??;
        }
        Ok(SqlStore {
            inner: Arc::new(Inner {
                pool,
                queries,
                timeout: self.timeout,
            }),
        })
    }
}

/// A statement took longer than the store's timeout.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {0:?}")]
struct TimedOut(Duration);

/// A schema was configured for a database without schemas.
#[derive(Debug, thiserror::Error)]
#[error("a schema can only be set for PostgreSQL, not {0:?}")]
struct SchemaError(Dialect);

impl SqlStore {
    /// A store at `url` with the default table, created if missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// A builder with the defaults.
    pub fn builder() -> SqlStoreBuilder {
        SqlStoreBuilder {
            table: DEFAULT_TABLE.to_owned(),
            schema: None,
            create_table: true,
            timeout: Duration::from_secs(3),
        }
    }

    /// The statements that create the table, for a migration of your own.
    ///
    /// Running them again does nothing. On PostgreSQL and MySQL/MariaDB they also add the
    /// `revision` column to a table created by an earlier version of this crate. SQLite
    /// cannot add a column conditionally in SQL: there, upgrade such a table once with
    /// `ALTER TABLE sessions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0`, or let the
    /// store do it ([`SqlStoreBuilder::create_table`], on by default).
    ///
    /// ```
    /// use session_sql::{Dialect, SqlStore};
    ///
    /// let sql = SqlStore::migration(Dialect::Postgres, "sessions", None).unwrap();
    /// assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS \"sessions\""));
    /// ```
    pub fn migration(
        dialect: Dialect,
        table: &str,
        schema: Option<&str>,
    ) -> Result<String, NameError> {
        check_name(table)?;
        if let Some(schema) = schema {
            check_name(schema)?;
        }
        let queries = dialect.queries(table, schema);
        let statements = [queries.create_table, queries.add_revision_if_missing].concat();
        Ok(statements.join(";\n") + ";\n")
    }

    /// The pool.
    pub fn pool(&self) -> &SqlPool {
        &self.inner.pool
    }

    /// Runs [`Store::delete_expired`] every `interval` until the handle is dropped.
    pub fn spawn_cleanup(&self, interval: Duration) -> Cleanup {
        spawn_cleanup(Arc::new(self.clone()), interval)
    }
}

fn now() -> i64 {
    unix_millis_i64(SystemTime::now())
}

/// A revision as the BIGINT column stores it: the same 64 bits, compared only for
/// equality.
fn stored(revision: Revision) -> i64 {
    revision.get().cast_signed()
}

fn revision(number: i64) -> Revision {
    Revision::new(number.cast_unsigned())
}

impl SqlStore {
    /// `statement`, failed with `Unavailable` if it takes longer than the timeout.
    ///
    /// Not an `async fn`: the statement's future, which holds its connection, is boxed
    /// here, so that the future this returns holds that box and the timer, and the store's
    /// operation futures stay small.
    fn bounded<'a, T>(
        &self,
        statement: impl Future<Output = Result<T, StoreError>> + 'a,
    ) -> impl Future<Output = Result<T, StoreError>> + 'a {
        let timeout = self.inner.timeout;
        let bounded = tokio::time::timeout(timeout, Box::pin(statement));
        async move {
            bounded
                .await
                .unwrap_or_else(|_| Err(StoreError::unavailable(BACKEND, TimedOut(timeout))))
        }
    }

    /// Runs one statement within the timeout; the rows it affected.
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        self.bounded(self.inner.pool.execute(sql, args)).await
    }

    /// The live row under `key`, if any.
    async fn current(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let load = self
            .inner
            .pool
            .load(&self.inner.queries.load, key.as_str(), now());
        let row = self.bounded(load).await?;
        Ok(row.map(|(data, expires_at, number)| {
            Loaded::new(data, revision(number)).with_expiry(from_unix_millis_i64(expires_at))
        }))
    }

    /// Why a conditional write matched no row: no live row, or one at another revision.
    async fn miss(&self, key: &StoreKey) -> StoreError {
        match self.current(key).await {
            Ok(Some(current)) => StoreError::conflict_with(current),
            Ok(None) => StoreError::UnknownId,
            Err(error) => error,
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.current(key).await
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        let (q, now) = (&self.inner.queries, now());
        let (key, at) = (Text(key.as_str()), Int(unix_millis_i64(at)));
        let first = Int(stored(Revision::FIRST));
        if self
            .execute(&q.insert, &[key, Bytes(value), at, Int(now), first])
            .await?
            == 1
        {
            return Ok(Revision::FIRST);
        }
        let args = [Bytes(value), at, Int(now), first, key, Int(now)];
        match self.execute(&q.take_over, &args).await? {
            1 => Ok(Revision::FIRST),
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
        let next = expected.next();
        let args = [
            Bytes(value),
            Int(unix_millis_i64(at)),
            Int(stored(next)),
            Text(key.as_str()),
            Int(now()),
            Int(stored(expected)),
        ];
        match self.execute(&self.inner.queries.update, &args).await? {
            0 => Err(self.miss(key).await),
            _ => Ok(next),
        }
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        let args = [Int(unix_millis_i64(at)), Text(key.as_str()), Int(now())];
        match self.execute(&self.inner.queries.touch, &args).await? {
            0 => Err(StoreError::UnknownId),
            _ => Ok(()),
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let args = [Text(key.as_str())];
        self.execute(&self.inner.queries.delete, &args)
            .await
            .map(drop)
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        expected: Revision,
    ) -> Result<(), StoreError> {
        let args = [Text(key.as_str()), Int(now()), Int(stored(expected))];
        match self
            .execute(&self.inner.queries.delete_if_unchanged, &args)
            .await?
        {
            0 => Err(self.miss(key).await),
            _ => Ok(()),
        }
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = now();
        let mut removed = 0;
        loop {
            let args = [Int(now), Int(DELETE_BATCH)];
            let batch = self
                .execute(&self.inner.queries.delete_expired, &args)
                .await?;
            removed += batch;
            if batch < DELETE_BATCH as u64 {
                return Ok(removed);
            }
        }
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
