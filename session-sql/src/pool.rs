//! The connection pool of whichever database the store uses, and the one place where a
//! statement is run on it.

use std::time::Duration;

use session_core::store::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, Database, Pool, Row as _};

use crate::dialect::{Dialect, Queries};
use crate::BACKEND;

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!("session-sql needs at least one of the features postgres, mysql, sqlite");

/// A sqlx pool for one of the supported databases.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SqlPool {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for SqlPool {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for SqlPool {
    fn from(pool: sqlx::MySqlPool) -> Self {
        Self::MySql(pool)
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for SqlPool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

/// A statement argument: the types the table's columns have.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    /// Text or NULL.
    MaybeText(Option<&'a str>),
    Bytes(&'a [u8]),
    Int(i64),
}

/// A row as `list_bound` and `scan` select it: id, data, expires_at.
pub(crate) type ListedRow = (String, Vec<u8>, i64);

/// `$query` with `$args` bound in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match *arg {
                Arg::Text(text) => query.bind(text),
                Arg::MaybeText(text) => query.bind(text),
                Arg::Bytes(bytes) => query.bind(bytes),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
    }};
}

/// Runs the same sqlx expression on whichever pool this is; each arm is type-checked
/// against its own database.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            #[cfg(feature = "postgres")]
            SqlPool::Postgres($p) => $body.map_err(failed),
            #[cfg(feature = "mysql")]
            SqlPool::MySql($p) => $body.map_err(failed),
            #[cfg(feature = "sqlite")]
            SqlPool::Sqlite($p) => $body.map_err(failed),
        }
    };
}

/// Runs one statement on a connection of its own from whichever pool this is: `$conn` is
/// that connection, dropped rather than returned to the pool if the statement is dropped
/// (by the store's timeout) before its answer came.
macro_rules! on_connection {
    ($pool:expr, $conn:ident => $statement:expr) => {
        on_pool!($pool, pool => async {
            let mut checkout = Checkout::acquire(pool).await?;
            let $conn = checkout.send()?;
            let result = $statement.await;
            checkout.answered();
            result
        }
        .await)
    };
}

/// A connection taken from the pool. Dropped while a statement on it waits for its answer,
/// it is detached from the pool and dropped instead of returned: the pool tests a returned
/// connection with a ping, and closing it gracefully (`close_on_drop`) waits for the
/// server's reply to the TLS goodbye, both behind the unanswered statement, so its slot
/// would stay taken while the database does not answer and a few such statements would
/// leave no connection for any other session. Dropping the socket frees the slot at once;
/// the database ends its side when the statement does.
struct Checkout<DB: Database> {
    /// `None` only once dropped.
    conn: Option<PoolConnection<DB>>,
    waiting: bool,
}

impl<DB: Database> Checkout<DB> {
    async fn acquire(pool: &Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(pool.acquire().await?),
            waiting: false,
        })
    }

    /// The connection, for statements that wait for their answer until
    /// [`answered`](Self::answered).
    fn send(&mut self) -> Result<&mut DB::Connection, sqlx::Error> {
        self.waiting = true;
        // The connection is taken only by `drop`, so it is always there.
        self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Every statement sent has been answered: the connection can go back to the pool.
    fn answered(&mut self) {
        self.waiting = false;
    }
}

impl<DB: Database> Drop for Checkout<DB> {
    fn drop(&mut self) {
        if self.waiting {
            if let Some(conn) = self.conn.take() {
                drop(conn.detach());
            }
        }
    }
}

/// How long a connection must have sat unused in the pool before it is checked with a
/// ping on its way out: sqlx checks every connection as it comes back, so only one that
/// idled since (through a database restart, a firewall's idle timeout) needs another look.
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The pool settings every dialect shares: `timeout` to get a connection, and a ping
/// before use only for a connection idle for [`IDLE_BEFORE_PING`], instead of sqlx's
/// default ping before every use, which costs a round trip per statement.
fn checked<DB: Database>(
    options: sqlx::pool::PoolOptions<DB>,
    timeout: Duration,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// A lost or unobtainable connection is `Unavailable` (503); anything else the database
/// said is a `Backend` error.
fn failed(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::unavailable(BACKEND, error),
        other => StoreError::backend(BACKEND, other),
    }
}

/// Creates the SQLite database file at `path`, empty and readable by this user only,
/// unless something is there already. SQLite would create it with mode 0644 less the
/// umask, letting every local user read the sessions; it gives the `-wal` and `-shm` files
/// the database file's mode, so they are private too. A name SQLite reads as a URI
/// (`file:...`) is left to SQLite.
#[cfg(feature = "sqlite")]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.to_str().is_some_and(|p| p.starts_with("file:")) {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The URL's database is not one this build supports.
#[derive(Debug, thiserror::Error)]
#[error("unsupported database URL scheme `{0}`; expected postgres://, mysql:// or sqlite:// (each behind its cargo feature)")]
struct SchemeError(String);

impl SqlPool {
    /// The database this pool talks to.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => Dialect::MySql,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Closes the connections that sit idle in the pool; the pool opens new ones as
    /// requests need them, on the runtime of the request that needs one.
    ///
    /// A PostgreSQL or MySQL connection is driven by the tokio runtime it was opened on for
    /// as long as it lives: opened in an app's `main()`, every answer on it wakes `main`'s
    /// thread first, which then wakes the worker waiting for it. A store made from a URL
    /// calls this on the pool it opens; call it yourself on a pool you opened in `main()`
    /// and passed to [`SqlStore::from_pool`], once the setup is done and before serving.
    ///
    /// Waits up to a second for connections still on their way back to the pool, and
    /// returns within `timeout` in any case: a database that stops answering leaves the
    /// rest to the pool's own checks. SQLite's connections have threads of their own (and
    /// `:memory:`'s one connection is the database), so they stay. A pool with
    /// `min_connections` set reopens that many on the caller's runtime as soon as they
    /// close, so this does not help one.
    ///
    /// # Panics
    /// Outside a tokio runtime with its timer enabled.
    ///
    /// [`SqlStore::from_pool`]: crate::SqlStore::from_pool
    ///
    /// # Example
    /// ```no_run
    /// use std::time::Duration;
    /// use session_sql::{SqlPool, SqlStore};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = SqlPool::from(sqlx::PgPool::connect("postgres://localhost/app").await?);
    /// let store = SqlStore::from_pool(pool.clone()).connect().await?;
    /// // The table's setup ran on connections `main()` would keep driving: let them go.
    /// pool.close_idle(Duration::from_secs(3)).await;
    /// # Ok(()) }
    /// ```
    pub async fn close_idle(&self, timeout: Duration) {
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        async fn close<DB: Database>(pool: &Pool<DB>) {
            // A connection goes back to the pool by a task of its own, which may talk to the
            // database first: let those arrive, for a second at most.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while pool.num_idle() < pool.size() as usize && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            while let Some(connection) = pool.try_acquire() {
                // A failed goodbye still drops the socket.
                let _ = connection.detach().close().await;
            }
        }
        let closing = async {
            match self {
                #[cfg(feature = "postgres")]
                Self::Postgres(pool) => close(pool).await,
                #[cfg(feature = "mysql")]
                Self::MySql(pool) => close(pool).await,
                #[cfg(feature = "sqlite")]
                Self::Sqlite(_) => {}
            }
        };
        let _ = tokio::time::timeout(timeout, closing).await;
    }

    pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => checked(sqlx::postgres::PgPoolOptions::new(), timeout)
                .connect(url)
                .await
                .map(Self::Postgres)
                .map_err(failed),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => checked(sqlx::mysql::MySqlPoolOptions::new(), timeout)
                .connect(url)
                .await
                .map(Self::MySql)
                .map_err(failed),
            #[cfg(feature = "sqlite")]
            "sqlite" => Self::connect_sqlite(url, timeout).await,
            other => Err(StoreError::backend(BACKEND, SchemeError(other.to_owned()))),
        }
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
        use std::str::FromStr as _;

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(failed)?
            .create_if_missing(true)
            .busy_timeout(timeout);
        let mut pool = checked(SqlitePoolOptions::new(), timeout);
        if in_memory {
            // Every connection to `:memory:` is a database of its own: keep exactly one,
            // forever, or the sessions vanish with it.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            // Readers do not wait for the writer.
            options = options.journal_mode(SqliteJournalMode::Wal);
            // A read-only database is opened, never created.
            if !url.contains("mode=ro") {
                create_private(options.get_filename())
                    .map_err(|e| StoreError::backend(BACKEND, e))?;
            }
        }
        pool.connect_with(options)
            .await
            .map(Self::Sqlite)
            .map_err(failed)
    }

    /// Creates the table if it is missing; on PostgreSQL under an advisory lock, because
    /// concurrent `CREATE TABLE IF NOT EXISTS` can fail there on a catalog unique index.
    /// Adds the `user_key` column and its index to a table an earlier build created,
    /// unless it has them; a failed step that another process's upgrade explains is no
    /// error.
    pub(crate) async fn add_missing_columns(&self, queries: &Queries) -> Result<(), StoreError> {
        if self.execute(&queries.probe_user_key, &[]).await.is_ok() {
            return Ok(());
        }
        for statement in &queries.add_user_key {
            if let Err(error) = self.execute(statement, &[]).await {
                if self.execute(&queries.probe_user_key, &[]).await.is_ok() {
                    return Ok(());
                }
                return Err(error);
            }
        }
        Ok(())
    }

    pub(crate) async fn create_table(&self, queries: &Queries) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let mut checkout = Checkout::acquire(pool).await.map_err(failed)?;
                // A failed step leaves the connection waiting, so it is dropped, not reused.
                let mut tx = checkout
                    .send()
                    .map_err(failed)?
                    .begin()
                    .await
                    .map_err(failed)?;
                // An arbitrary constant: "session-sql DDL".
                sqlx::query("SELECT pg_advisory_xact_lock(7204519331)")
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                for statement in &queries.create_table {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
                tx.commit().await.map_err(failed)?;
                checkout.answered();
                Ok(())
            }
            #[allow(unreachable_patterns)]
            _ => {
                for statement in &queries.create_table {
                    self.execute(statement, &[]).await?;
                }
                Ok(())
            }
        }
    }

    /// The live row's data, expiry and revision.
    pub(crate) async fn load(
        &self,
        sql: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<(Vec<u8>, i64, i64)>, StoreError> {
        on_connection!(self, conn => sqlx::query_as(sql).bind(key).bind(now).fetch_optional(conn))
    }

    /// Runs one statement with its arguments, in order; returns the rows it affected.
    pub(crate) async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        on_connection!(self, conn => {
            let query = bind_args!(sqlx::query(sql), args);
            async move { query.execute(conn).await.map(|r| r.rows_affected()) }
        })
    }

    /// Runs one query that selects id, data and expires_at; returns its rows.
    pub(crate) async fn listed(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<ListedRow>, StoreError> {
        on_connection!(self, conn => {
            let query = bind_args!(sqlx::query(sql), args);
            async move {
                let rows = query.fetch_all(conn).await?;
                rows.iter()
                    .map(|row| {
                        // Unchecked: MySQL flags the ascii_bin id column as binary, which sqlx
                        // will not read as text; decoding still checks the bytes are UTF-8.
                        let id = row.try_get_unchecked(0)?;
                        Ok((id, row.try_get(1)?, row.try_get(2)?))
                    })
                    .collect::<Result<Vec<ListedRow>, sqlx::Error>>()
            }
        })
    }

    /// Runs one query that selects a single count.
    pub(crate) async fn count(&self, sql: &str, args: &[Arg<'_>]) -> Result<i64, StoreError> {
        on_connection!(self, conn => {
            let query = bind_args!(sqlx::query_scalar(sql), args);
            async move { query.fetch_one(conn).await }
        })
    }
}
