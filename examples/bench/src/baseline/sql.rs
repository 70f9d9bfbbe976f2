//! PostgreSQL, MySQL/MariaDB and SQLite through sqlx: a table of its own with the columns
//! and index of `SqlStore`'s, on a pool made as `SqlStore` makes its own from a URL (sqlx's
//! default pool, the store's acquire timeout; for SQLite the same file, WAL and busy
//! timeout), running `SqlStore`'s statements:
//!
//! - `/read`: `SELECT data, expires_at, revision ... WHERE id = ? AND expires_at > now`;
//! - `/incr`: that `SELECT`, then `UPDATE ... SET data = ?, expires_at = ?, revision = ?
//!   WHERE id = ? AND expires_at > now AND revision = ?`;
//! - `/new`: `INSERT` with revision 1 that cannot overwrite (`ON CONFLICT DO NOTHING`,
//!   `INSERT IGNORE`, `INSERT OR IGNORE`).
//!
//! Each statement runs on the pool as it is, without the timer `SqlStore` puts around each
//! of its own.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};
use session_sql::SqlPool;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::Connection as _;

use super::{
    counter, expires_at, failure, key, new_sid, sid, text, unix_millis, with_cookie, ATTEMPTS,
    TABLE,
};

/// `SqlStore`'s default timeout, which its pool gets as the acquire timeout and SQLite as
/// the busy timeout (unless the URL sets another).
const TIMEOUT: Duration = Duration::from_secs(3);

/// An arbitrary constant for the advisory lock around the DDL on PostgreSQL, where
/// concurrent `CREATE TABLE IF NOT EXISTS` can fail: "bench-baseline DDL".
const DDL_LOCK: i64 = 7_204_519_332;

/// A sqlx pool of one of the three databases.
#[derive(Clone, Debug)]
enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// The pool and the statements for its database, shared by the workers as the library's
/// store shares its pool.
#[derive(Clone, Debug)]
pub struct Sql {
    pool: Pool,
    /// binds: key, now. Selects data, expires_at, revision.
    load: String,
    /// binds: data, expires_at, new revision, key, now, expected revision.
    update: String,
    /// binds: key, data, expires_at, now, revision.
    insert: String,
}

/// Runs the same sqlx expression on whichever pool this is; each arm is type-checked
/// against its own database.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Postgres($p) => $body,
            Pool::MySql($p) => $body,
            Pool::Sqlite($p) => $body,
        }
    };
}

/// `SqlStore`'s pool settings: `timeout` to get a connection, and a ping before use only
/// for a connection idle for a second.
fn checked<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
    timeout: Duration,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Sql {
    /// Closes the connections the setup left idle, as `SqlStore` does with the same call:
    /// they would stay driven by `main()`'s runtime, which then wakes the worker on every
    /// answer.
    async fn close_idle(&self, timeout: Duration) {
        let pool = match &self.pool {
            Pool::Postgres(pool) => SqlPool::from(pool.clone()),
            Pool::MySql(pool) => SqlPool::from(pool.clone()),
            Pool::Sqlite(pool) => SqlPool::from(pool.clone()),
        };
        pool.close_idle(timeout).await;
    }

    /// The pool for `url`, made as `SqlStore` makes its own, and the baseline's table,
    /// created if missing.
    pub(super) async fn connect(url: &str, timeout: Option<Duration>) -> Result<Self, String> {
        let timeout = timeout.unwrap_or(TIMEOUT);
        let unreachable = |e: sqlx::Error| format!("cannot reach the database: {e}");
        let scheme = url.split(':').next().unwrap_or_default();
        let pool = match scheme {
            "postgres" | "postgresql" => checked(PgPoolOptions::new(), timeout)
                .connect(url)
                .await
                .map(Pool::Postgres),
            "mysql" | "mariadb" => checked(MySqlPoolOptions::new(), timeout)
                .connect(url)
                .await
                .map(Pool::MySql),
            _ => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(unreachable)?
                    .create_if_missing(true)
                    .busy_timeout(timeout)
                    // Readers do not wait for the writer.
                    .journal_mode(SqliteJournalMode::Wal);
                checked(SqlitePoolOptions::new(), timeout)
                    .connect_with(options)
                    .await
                    .map(Pool::Sqlite)
            }
        }
        .map_err(unreachable)?;
        let sql = Self::statements(pool);
        sql.create_table().await.map_err(unreachable)?;
        sql.close_idle(timeout).await;
        Ok(sql)
    }

    /// `SqlStore`'s statements for the baseline's table, in the pool's dialect.
    fn statements(pool: Pool) -> Self {
        let t = TABLE;
        let columns = "(id, data, expires_at, created_at, revision)";
        let (load, update, insert) = match pool {
            Pool::Postgres(_) => (
                format!("SELECT data, expires_at, revision FROM {t} WHERE id = $1 AND expires_at > $2"),
                format!(
                    "UPDATE {t} SET data = $1, expires_at = $2, revision = $3 \
                     WHERE id = $4 AND expires_at > $5 AND revision = $6"
                ),
                format!(
                    "INSERT INTO {t} {columns} VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING"
                ),
            ),
            Pool::MySql(_) | Pool::Sqlite(_) => (
                format!("SELECT data, expires_at, revision FROM {t} WHERE id = ? AND expires_at > ?"),
                format!(
                    "UPDATE {t} SET data = ?, expires_at = ?, revision = ? \
                     WHERE id = ? AND expires_at > ? AND revision = ?"
                ),
                match pool {
                    Pool::MySql(_) => format!("INSERT IGNORE INTO {t} {columns} VALUES (?, ?, ?, ?, ?)"),
                    _ => format!("INSERT OR IGNORE INTO {t} {columns} VALUES (?, ?, ?, ?, ?)"),
                },
            ),
        };
        Self {
            pool,
            load,
            update,
            insert,
        }
    }

    /// The table, with `SqlStore`'s columns and index on `expires_at`, if it is missing.
    async fn create_table(&self) -> Result<(), sqlx::Error> {
        let t = TABLE;
        let index = format!("{t}_expires_at");
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                let mut tx = connection.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(DDL_LOCK)
                    .execute(&mut *tx)
                    .await?;
                for statement in [
                    format!(
                        "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                         expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, \
                         revision BIGINT NOT NULL)"
                    ),
                    format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
                ] {
                    sqlx::query(&statement).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Pool::MySql(pool) => sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin \
                 NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL, expires_at BIGINT NOT NULL, \
                 created_at BIGINT NOT NULL, revision BIGINT NOT NULL, \
                 INDEX {index} (expires_at))"
            ))
            .execute(pool)
            .await
            .map(drop),
            Pool::Sqlite(pool) => {
                for statement in [
                    format!(
                        "CREATE TABLE IF NOT EXISTS {t} (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, \
                         expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, \
                         revision INTEGER NOT NULL) WITHOUT ROWID"
                    ),
                    format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
                ] {
                    sqlx::query(&statement).execute(pool).await?;
                }
                Ok(())
            }
        }
    }

    /// The routes, on this pool.
    pub(super) fn routes(&self, config: &mut web::ServiceConfig) {
        config
            .app_data(web::Data::new(self.clone()))
            .route("/read", web::get().to(read))
            .route("/incr", web::get().to(incr))
            .route("/new", web::get().to(new));
    }

    /// The live row's counter and revision, if it is there.
    async fn load(&self, key: &str) -> Result<Option<(i64, i64)>, sqlx::Error> {
        let now = unix_millis(SystemTime::now());
        let row: Option<(Vec<u8>, i64, i64)> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&self.load)
                .bind(key)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(data, _expires_at, revision)| (counter(&data), revision)))
    }

    /// Writes `value` at the revision after `revision` if the live row is still at
    /// `revision`; whether it was.
    async fn update(&self, key: &str, value: i64, revision: i64) -> Result<bool, sqlx::Error> {
        let data = value.to_string().into_bytes();
        let (now, at) = (unix_millis(SystemTime::now()), unix_millis(expires_at()));
        let rows = on_pool!(&self.pool, pool => {
            sqlx::query(&self.update)
                .bind(data.as_slice())
                .bind(at)
                .bind(revision.wrapping_add(1))
                .bind(key)
                .bind(now)
                .bind(revision)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(rows == 1)
    }

    /// Stores a new session with counter 0 under `key`; whether the id was free.
    async fn insert(&self, key: &str) -> Result<bool, sqlx::Error> {
        let (now, at) = (unix_millis(SystemTime::now()), unix_millis(expires_at()));
        let rows = on_pool!(&self.pool, pool => {
            sqlx::query(&self.insert)
                .bind(key)
                .bind(b"0".as_slice())
                .bind(at)
                .bind(now)
                .bind(1_i64)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(rows == 1)
    }
}

async fn read(req: HttpRequest, sql: web::Data<Sql>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("0");
    };
    match sql.load(&key(&sid)).await {
        Ok(found) => text(found.map_or(0, |(value, _)| value).to_string()),
        Err(_) => failure(),
    }
}

async fn incr(req: HttpRequest, sql: web::Data<Sql>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = key(&sid);
    for _ in 0..ATTEMPTS {
        let (value, revision) = match sql.load(&key).await {
            Ok(Some(found)) => found,
            Ok(None) => return text("1"),
            Err(_) => return failure(),
        };
        match sql.update(&key, value + 1, revision).await {
            Ok(true) => return text((value + 1).to_string()),
            Ok(false) => continue,
            Err(_) => return failure(),
        }
    }
    failure()
}

async fn new(sql: web::Data<Sql>) -> HttpResponse {
    let sid = new_sid();
    match sql.insert(&key(&sid)).await {
        Ok(true) => with_cookie(&sid, "0"),
        _ => failure(),
    }
}
