//! `SqlStore`: sessions in PostgreSQL, MySQL/MariaDB or SQLite, through sqlx.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use session_sql::SqlStore;
//!
//! let postgres = SqlStore::connect("postgres://postgres@127.0.0.1/app").await?;
//! let mysql = SqlStore::builder("mysql://root@127.0.0.1/app")
//!     .table("web_sessions")
//!     .connect()
//!     .await?;
//! let sqlite = SqlStore::connect("sqlite://sessions.db").await?; // zero setup, like files
//! let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/app").await?; // the app's own
//! let shared = SqlStore::from_pool(pool).connect().await?;
//! // Rows are not removed when they expire: sweep them every ten minutes.
//! let _cleanup = postgres.spawn_cleanup(Duration::from_secs(600));
//! # Ok(()) }
//! ```
//!
//! # Setting it up
//! Every store that takes a URL is set up the same way: [`SqlStore::connect`] with a URL
//! and the default settings, or a builder, finished by
//! [`connect`](SqlStoreBuilder::connect), that starts from a URL ([`SqlStore::builder`])
//! or from a sqlx pool the application already has ([`SqlStore::from_pool`]: a
//! `PgPool`, `MySqlPool` or `SqlitePool`, as [`SqlPool`] converts them). `connect` creates
//! the table, so a database that cannot be reached fails at start-up.
//!
//! Nothing removes an expired session's row by itself (a session read after it expired is
//! absent all the same): [`SqlStore::spawn_cleanup`] removes them periodically, as
//! `FileStore::spawn_cleanup` does for files.
//!
//! # The table
//! Created on first use (idempotently, and safely when several instances start at once),
//! or by your own migrations from [`SqlStore::migration`]:
//!
//! | column | type | |
//! |---|---|---|
//! | `id` | text, primary key, byte-wise order | the store key: `session:` and the id's digest, by default |
//! | `data` | bytea / longblob / blob | the encoded session |
//! | `expires_at` | bigint, indexed | Unix milliseconds |
//! | `created_at` | bigint | Unix milliseconds |
//! | `revision` | bigint | the record's [`Revision`]: 1 on create, +1 per update |
//! | `user_key` | text, nullable, indexed | the [`UserKey`] of the user the session is bound to |
//!
//! # Users' sessions
//! A user's index is the `user_key` column: [`Store::create_bound`] is `create`'s `INSERT`
//! with the column set, so a bound session is in its user's index exactly while its row
//! exists, and [`Store::list_bound`] selects the live rows with that `user_key` through
//! its index (in PostgreSQL and SQLite a partial one, of bound rows only, since most
//! sessions are anonymous). [`Store::unbind`] sets the column back to NULL; deleting or
//! expiring the row takes it out of the index with it, so there is nothing to prune.
//! [`Store::count`] and [`Store::scan`] read the live rows whose ids are in the prefix's
//! range (`id > prefix AND id < the prefix with its last character incremented`, no
//! `LIKE`, so `_` and `%` in a prefix mean themselves) through the primary key; `scan`
//! pages in id order, its cursor the last id of a page. Ids compare byte-wise: MySQL's id
//! column is `ascii_bin`, SQLite's default collation is binary, and in PostgreSQL the
//! column is `COLLATE "C"` and the queries say so too.
//!
//! A table created without `user_key` (by an earlier build) gets it at `connect` with
//! [`TableSetup::CreateIfMissing`], the default; with [`TableSetup::Existing`], run
//! [`SqlStore::user_key_migration`] in your migrations before this build serves from it.
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
//! | `create` | `INSERT` with `revision = 1` that cannot overwrite (`ON CONFLICT DO NOTHING`, `INSERT IGNORE`, `INSERT OR IGNORE`); only when the id is taken, `UPDATE ... SET ..., revision = 1, user_key = NULL WHERE id = ? AND expires_at <= now` takes over the row of an expired session |
//! | `update` | `UPDATE ... SET data = ?, expires_at = ?, revision = expected + 1 WHERE id = ? AND expires_at > now AND revision = expected` |
//! | `delete_if_unchanged` | `DELETE ... WHERE id = ? AND expires_at > now AND revision = expected` |
//! | `touch` | `UPDATE ... SET expires_at = ? WHERE id = ? AND expires_at > now` (the revision stays) |
//! | `delete` | `DELETE ... WHERE id = ?` |
//! | `delete_expired` | `DELETE` of expired rows in batches of 5,000 |
//! | `create_bound` | `create`'s statements with `user_key` set |
//! | `unbind` | `UPDATE ... SET user_key = NULL WHERE id = ? AND user_key = ?` |
//! | `list_bound` | `SELECT id, data, expires_at ... WHERE user_key = ? AND expires_at > now` |
//! | `count` | `SELECT COUNT(*) ... WHERE id > ? AND id < ? AND expires_at > now` |
//! | `scan` | `SELECT id, data, expires_at ...` in the same range and after the cursor, `ORDER BY id LIMIT` the page and one more |
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
//!
//! # Pool
//! A store made from a URL opens a sqlx pool of sqlx's default size (10 connections; a
//! request holds one for one statement at a time), whose wait for a connection is the
//! store's timeout. sqlx checks a connection with a ping as it comes back to the pool; the
//! store pings it again before use only when it sat idle for a second or more, instead of
//! sqlx's default ping before every use, which costs a round trip per statement
//! (`docs/performance.md` has the measurement). A pool you pass to
//! [`SqlStore::from_pool`] keeps its own settings: consider the same
//! `test_before_acquire(false)` with a `before_acquire` that pings idle connections.
//!
//! A PostgreSQL or MySQL connection is served by the tokio runtime it was opened on, for
//! as long as it lives, and every answer on a connection opened elsewhere first wakes
//! that runtime's thread, which then wakes the one waiting. `connect` runs on the
//! caller's runtime (an app's `main`, usually), so the store closes the connections its
//! setup opened before it returns, and the pool opens new ones as requests need them, on
//! the runtime of the request that needs one. Three things still open one elsewhere:
//! a [`spawn_cleanup`](SqlStore::spawn_cleanup) task on `main` when no connection is idle
//! (the pool replaces every connection within its lifetime, 30 minutes by default),
//! several actix workers sharing the pool (each connection belongs to one worker's runtime
//! and serves them all), and a pool you pass in, which is left as it is: call
//! [`SqlPool::close_idle`] on it after the setup, or let it start empty (`connect_lazy`).

mod dialect;
mod pool;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::store::time::{from_unix_millis_i64, unix_millis_i64};
use session_core::store::{
    Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey, UserKey,
};
use session_core::Cleanup;

use crate::dialect::{check_name, Queries};
pub use crate::dialect::{Dialect, NameError};
use crate::pool::Arg::{self, Bytes, Int, MaybeText, Text};
use crate::pool::ListedRow;
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

/// What [`SqlStoreBuilder::connect`] does about the sessions table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableSetup {
    /// Creates the table and its indexes if they are missing (`CREATE ... IF NOT EXISTS`),
    /// and adds the `user_key` column to a table an earlier build created
    /// ([`SqlStore::user_key_migration`]).
    CreateIfMissing,
    /// Leaves the schema alone: the application's migrations create the table.
    Existing,
}

/// Configures a [`SqlStore`]: made by [`SqlStore::builder`] from a URL or by
/// [`SqlStore::from_pool`] from a pool, and finished by [`connect`](SqlStoreBuilder::connect).
#[derive(Clone)]
#[must_use]
pub struct SqlStoreBuilder {
    source: Source,
    table: String,
    schema: Option<String>,
    table_setup: TableSetup,
    timeout: Duration,
}

/// Where a builder's store finds its database.
#[derive(Clone)]
enum Source {
    Url(String),
    Pool(SqlPool),
}

/// The URL can carry a password, and the pool its connect options: neither is shown.
impl std::fmt::Debug for SqlStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Url(_) => "a URL".to_owned(),
            Source::Pool(pool) => format!("a {:?} pool", pool.dialect()),
        };
        f.debug_struct("SqlStoreBuilder")
            .field("source", &source)
            .field("table", &self.table)
            .field("schema", &self.schema)
            .field("table_setup", &self.table_setup)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SqlStoreBuilder {
    /// The table the sessions live in.
    ///
    /// # Default
    /// [`DEFAULT_TABLE`], `sessions`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The schema the table lives in (PostgreSQL only).
    ///
    /// # Default
    /// None: the connection's search path decides.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether `connect` creates the table if it is missing, or expects it to exist
    /// because your migrations create it from [`SqlStore::migration`].
    ///
    /// # Default
    /// [`TableSetup::CreateIfMissing`].
    ///
    /// # Example
    /// ```
    /// use session_sql::{SqlStore, TableSetup};
    ///
    /// let builder = SqlStore::builder("postgres://localhost/app").table_setup(TableSetup::Existing);
    /// ```
    pub fn table_setup(mut self, setup: TableSetup) -> Self {
        self.table_setup = setup;
        self
    }

    /// How long a statement may take, getting its connection included, before it fails
    /// with `StoreError::Unavailable`. It bounds every statement whatever the pool (a call
    /// of two statements may take two timeouts), and creating the table at start as a
    /// whole; for a pool made from a URL it is also the pool's acquire timeout.
    ///
    /// # Default
    /// 3 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens a pool (for a URL: `postgres://`, `mysql://`, `sqlite://path`,
    /// `sqlite::memory:`), then creates the table unless told not to.
    ///
    /// # Errors
    /// `StoreError::Backend` for a URL of a database this build does not support, an
    /// invalid table or schema name ([`NameError`]), a schema on another database than
    /// PostgreSQL, or DDL the database refuses; `StoreError::Unavailable` if the database
    /// cannot be reached within the timeout.
    pub async fn connect(self) -> Result<SqlStore, StoreError> {
        let (pool, own_pool) = match self.source {
            Source::Url(url) => (SqlPool::connect(&url, self.timeout).await?, true),
            Source::Pool(pool) => (pool, false),
        };
        let dialect = pool.dialect();
        check_name(&self.table).map_err(|e| StoreError::backend(BACKEND, e))?;
        if let Some(schema) = &self.schema {
            check_name(schema).map_err(|e| StoreError::backend(BACKEND, e))?;
            if dialect != Dialect::Postgres {
                return Err(StoreError::backend(BACKEND, SchemaError(dialect)));
            }
        }
        let queries = dialect.queries(&self.table, self.schema.as_deref());
        if self.table_setup == TableSetup::CreateIfMissing {
            let setup = async {
                if let Err(error) = pool.create_table(&queries).await {
                    // A table an earlier build created lacks the column a new index is on:
                    // add it, then create what is still missing.
                    if pool.add_missing_columns(&queries).await.is_err() {
                        return Err(error);
                    }
                    pool.create_table(&queries).await?;
                }
                pool.add_missing_columns(&queries).await
            };
            tokio::time::timeout(self.timeout, setup)
                .await
                .map_err(|_| StoreError::unavailable(BACKEND, TimedOut(self.timeout)))??;
        }
        if own_pool {
            pool.close_idle(self.timeout).await;
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

/// The statements for `table` (in `schema`), once both names are checked.
fn checked_queries(
    dialect: Dialect,
    table: &str,
    schema: Option<&str>,
) -> Result<Queries, NameError> {
    check_name(table)?;
    if let Some(schema) = schema {
        check_name(schema)?;
    }
    Ok(dialect.queries(table, schema))
}

/// Statements as one script, each ended by `;`.
fn script(statements: &[String]) -> String {
    statements.join(";\n") + ";\n"
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
    ///
    /// # Errors
    /// As [`SqlStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for a store at `url`, finished by [`connect`](SqlStoreBuilder::connect).
    pub fn builder(url: impl Into<String>) -> SqlStoreBuilder {
        Self::with_source(Source::Url(url.into()))
    }

    /// A builder for a store on a pool the application already has (`sqlx::PgPool`,
    /// `MySqlPool` or `SqlitePool`, each behind its cargo feature), finished by
    /// [`connect`](SqlStoreBuilder::connect). The pool's own settings apply, its acquire
    /// timeout included; the store's timeout bounds each statement on top. A SQLite pool
    /// gets none of what the store does for one it opens from a URL: a database file only
    /// the server's user can read, WAL mode, and for `:memory:` the one connection kept
    /// open that holds the whole database. Nor are the connections the setup opened closed
    /// (see [Pool](crate#pool)): for a pool opened in `main`, call
    /// [`SqlPool::close_idle`] once the setup is done.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_sql::SqlStore;
    ///
    /// let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let store = SqlStore::from_pool(pool.clone())
    ///     .table("web_sessions")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: impl Into<SqlPool>) -> SqlStoreBuilder {
        Self::with_source(Source::Pool(pool.into()))
    }

    fn with_source(source: Source) -> SqlStoreBuilder {
        SqlStoreBuilder {
            source,
            table: DEFAULT_TABLE.to_owned(),
            schema: None,
            table_setup: TableSetup::CreateIfMissing,
            timeout: Duration::from_secs(3),
        }
    }

    /// The statements that create the table, for a migration of your own. Running them
    /// again does nothing.
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
        Ok(script(
            &checked_queries(dialect, table, schema)?.create_table,
        ))
    }

    /// The statements that bring a table created without the `user_key` column (by an
    /// earlier build of this crate, or by your migrations from its
    /// [`migration`](Self::migration)) to the shape this build creates: the column and its
    /// index, and in PostgreSQL the byte-wise collation of `id`. Run them once, before
    /// this build serves from the table; they fail if the column is there already.
    ///
    /// ```
    /// use session_sql::{Dialect, SqlStore};
    ///
    /// let sql = SqlStore::user_key_migration(Dialect::Sqlite, "sessions", None).unwrap();
    /// assert!(sql.starts_with("ALTER TABLE \"sessions\" ADD COLUMN user_key TEXT;"));
    /// ```
    pub fn user_key_migration(
        dialect: Dialect,
        table: &str,
        schema: Option<&str>,
    ) -> Result<String, NameError> {
        Ok(script(
            &checked_queries(dialect, table, schema)?.add_user_key,
        ))
    }

    /// The pool.
    pub fn pool(&self) -> &SqlPool {
        &self.inner.pool
    }

    /// Removes the rows of expired sessions ([`Store::delete_expired`]) every `interval`
    /// on the current tokio runtime, until the returned handle is dropped; failures are
    /// logged and the next round tries again.
    ///
    /// Nothing else removes them: a session is absent once it has expired, but its row
    /// stays until a cleanup removes it.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// # Example
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use session_sql::SqlStore;
    ///
    /// let store = SqlStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let cleanup = store.spawn_cleanup(Duration::from_secs(600));
    /// // ... serve requests; the cleanup stops when `cleanup` is dropped.
    /// # drop(cleanup);
    /// # Ok(()) }
    /// ```
    pub fn spawn_cleanup(&self, interval: Duration) -> Cleanup {
        session_core::spawn_cleanup(self.clone(), interval)
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

fn listed((id, data, expires_at): ListedRow) -> Listed {
    Listed::new(
        StoreKey::from_stored(id),
        data,
        from_unix_millis_i64(expires_at),
    )
}

/// The least text above every key that starts with `prefix`: `prefix` with its last
/// character moved to the next one, so a range of ids needs no `LIKE` (whose `_` and `%`
/// a prefix may hold).
fn past(prefix: &str) -> String {
    let mut upper = prefix.to_owned();
    while let Some(last) = upper.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            upper.push(next);
            return upper;
        }
    }
    // Keys are printable ASCII (the key prefix's rule, then base64url): DEL is above them.
    "\u{7f}".to_owned()
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

    /// `create` and `create_bound`: the row, bound to `user` if any, in one statement
    /// (and a second to take over an expired session's row), so a bound session is never
    /// without its `user_key`.
    async fn insert(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: Option<&UserKey>,
    ) -> Result<Revision, StoreError> {
        let (q, now) = (&self.inner.queries, now());
        let (key, at) = (Text(key.as_str()), Int(unix_millis_i64(at)));
        let (first, user) = (
            Int(stored(Revision::FIRST)),
            MaybeText(user.map(UserKey::as_str)),
        );
        if self
            .execute(&q.insert, &[key, Bytes(value), at, Int(now), first, user])
            .await?
            == 1
        {
            return Ok(Revision::FIRST);
        }
        let args = [Bytes(value), at, Int(now), first, user, key, Int(now)];
        match self.execute(&q.take_over, &args).await? {
            1 => Ok(Revision::FIRST),
            _ => Err(StoreError::DuplicateId),
        }
    }

    /// Runs one query of rows (id, data, expires_at) within the timeout.
    async fn listed(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Listed>, StoreError> {
        let rows = self.bounded(self.inner.pool.listed(sql, args)).await?;
        Ok(rows.into_iter().map(listed).collect())
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
        self.insert(key, value, at, None).await
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

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.insert(key, value, at, Some(user)).await
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        let args = [Text(key.as_str()), Text(user.as_str())];
        self.execute(&self.inner.queries.unbind, &args)
            .await
            .map(drop)
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let args = [Text(user.as_str()), Int(now())];
        self.listed(&self.inner.queries.list_bound, &args).await
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let upper = past(prefix);
        let args = [Text(prefix), Text(&upper), Int(now())];
        let count = self.inner.pool.count(&self.inner.queries.count, &args);
        Ok(self.bounded(count).await?.cast_unsigned())
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let upper = past(prefix);
        let lower = after.map_or(prefix, |after| after.as_str().max(prefix));
        let limit = limit.max(1);
        // One row more than the page tells whether another page follows.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let args = [Text(lower), Text(&upper), Int(now()), Int(fetch)];
        let mut records = self.listed(&self.inner.queries.scan, &args).await?;
        let next = if records.len() > limit {
            records.truncate(limit);
            records
                .last()
                .map(|last| ScanCursor::new(last.key().as_str()))
        } else {
            None
        };
        Ok(ScanPage { records, next })
    }
}

#[cfg(test)]
mod tests {
    use super::past;

    #[test]
    fn a_prefix_range_ends_at_the_next_character() {
        assert_eq!(past("session:"), "session;");
        assert_eq!(past("a_%"), "a_&");
        assert_eq!(past("p~"), "p\u{7f}");
        assert_eq!(past(""), "\u{7f}");
        assert_eq!(past("p\u{10ffff}"), "q");
        assert_eq!(past("p\u{d7ff}"), "p\u{e000}");
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
