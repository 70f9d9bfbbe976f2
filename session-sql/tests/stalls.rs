//! A database that stops answering a statement: the call fails with `Unavailable` within
//! the store's timeout, and the store works again once the database answers.
//!
//! Another connection holds a lock, so the store's statement waits in the database with
//! its connection open, as it would on a server that took the statement and then froze:
//! the pool hands out a connection at once, and only a bound on the statement itself ends
//! the wait.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{mysql_url, postgres_url, unique};
use session_core::store::{Store, StoreError, StoreKey};
use session_core::{IdLength, SessionId};
use session_sql::SqlStore;
use session_testkit::outage::{self, HUNG, MARGIN};
use sqlx::{Connection as _, MySqlConnection, PgConnection};
use tokio::task::JoinSet;

const TIMEOUT: Duration = Duration::from_millis(300);

/// The connections of the small pools below.
const POOL_SIZE: u32 = 2;

fn new_key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// The server databases whose statements the tests hold up.
#[derive(Clone, Copy)]
enum Database {
    Postgres,
    Mysql,
}

impl Database {
    /// A store on a table of its own (in PostgreSQL, in a schema of its own, which a later
    /// run drops if this one fails), on a pool of `connections` if given, with a
    /// connection of the test's own to hold locks on it.
    async fn hold(self, label: &str, connections: Option<u32>) -> Held {
        let name = unique(label);
        let url = match self {
            Self::Postgres => postgres_url(),
            Self::Mysql => mysql_url(),
        };
        let builder = match (self, connections) {
            (_, None) => SqlStore::builder(url.clone()),
            (Self::Postgres, Some(n)) => SqlStore::from_pool(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(n)
                    .connect(&url)
                    .await
                    .unwrap(),
            ),
            (Self::Mysql, Some(n)) => SqlStore::from_pool(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(n)
                    .connect(&url)
                    .await
                    .unwrap(),
            ),
        };
        let builder = match self {
            Self::Postgres => builder.schema(&name),
            Self::Mysql => builder.table(&name),
        };
        let store = builder.timeout(TIMEOUT).connect().await.unwrap();
        match self {
            Self::Postgres => Held {
                database: "postgres",
                store,
                table: format!("\"{name}\".sessions"),
                cleanup: format!("DROP SCHEMA \"{name}\" CASCADE"),
                locker: Locker::Postgres(PgConnection::connect(&url).await.unwrap()),
            },
            Self::Mysql => Held {
                database: "mysql",
                store,
                table: format!("`{name}`"),
                cleanup: format!("DROP TABLE `{name}`"),
                locker: Locker::Mysql(MySqlConnection::connect(&url).await.unwrap()),
            },
        }
    }
}

/// A connection that holds locks while the store's statements wait.
enum Locker {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

/// A store on a table of the test's own, and the connection that holds it up.
struct Held {
    database: &'static str,
    store: SqlStore,
    /// The store's table, quoted, with its schema.
    table: String,
    /// The statement that removes what the test made.
    cleanup: String,
    locker: Locker,
}

/// What a test locks, and so which of the store's statements wait.
#[derive(Clone, Copy)]
enum Hold {
    /// The whole table: PostgreSQL's `LOCK TABLE`, in a transaction, or MySQL's `LOCK
    /// TABLES`.
    Table,
    /// One row: `SELECT ... FOR UPDATE`, in a transaction.
    Row,
}

impl Held {
    /// Takes the lock `hold` says, on `key`'s row for [`Hold::Row`].
    async fn lock(&mut self, hold: Hold, key: &StoreKey) {
        let table = self.table.clone();
        if let (Hold::Table, Locker::Mysql(_)) = (hold, &self.locker) {
            return self.run(&format!("LOCK TABLES {table} WRITE")).await;
        }
        self.run("BEGIN").await;
        match (hold, &mut self.locker) {
            (Hold::Table, _) => {
                let lock = format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE");
                self.run(&lock).await;
            }
            (Hold::Row, Locker::Postgres(connection)) => {
                sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE"))
                    .bind(key.as_str())
                    .execute(connection)
                    .await
                    .unwrap();
            }
            (Hold::Row, Locker::Mysql(connection)) => {
                sqlx::query(&format!("SELECT id FROM {table} WHERE id = ? FOR UPDATE"))
                    .bind(key.as_str())
                    .execute(connection)
                    .await
                    .unwrap();
            }
        }
    }

    /// Lets go of the lock `hold` says.
    async fn unlock(&mut self, hold: Hold) {
        match (hold, &self.locker) {
            (Hold::Table, Locker::Mysql(_)) => self.run("UNLOCK TABLES").await,
            _ => self.run("ROLLBACK").await,
        }
    }

    /// Removes the table (the schema, in PostgreSQL).
    async fn clean_up(mut self) {
        let cleanup = std::mem::take(&mut self.cleanup);
        self.run(&cleanup).await;
    }

    /// Runs `sql` on the locking connection, as plain text.
    async fn run(&mut self, sql: &str) {
        match &mut self.locker {
            Locker::Postgres(connection) => {
                sqlx::raw_sql(sql).execute(connection).await.unwrap();
            }
            Locker::Mysql(connection) => {
                sqlx::raw_sql(sql).execute(connection).await.unwrap();
            }
        }
    }
}

/// While `hold` holds the store's statements up, they fail in time (and, on a locked row,
/// leave the pool usable); once it is gone, the store answers again.
async fn held_up_then_recovered(database: Database, hold: Hold) {
    let (label, connections) = match hold {
        Hold::Table => ("stall", None),
        Hold::Row => ("stall_pool", Some(POOL_SIZE)),
    };
    let mut held = database.hold(label, connections).await;
    let key = new_key();
    held.store
        .create(&key, b"kept", in_an_hour())
        .await
        .unwrap();

    held.lock(hold, &key).await;
    match hold {
        Hold::Table => outage::calls_fail_in_time(held.database, &held.store, &key, TIMEOUT).await,
        Hold::Row => stalled_calls_leave_the_pool_usable(held.database, &held.store, &key).await,
    }
    held.unlock(hold).await;
    let within = Duration::from_secs(10);
    outage::recovers(held.database, &held.store, &key, b"kept", within).await;
    held.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_up_by_postgres_fails_in_time_and_the_store_recovers() {
    held_up_then_recovered(Database::Postgres, Hold::Table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_up_by_mysql_fails_in_time_and_the_store_recovers() {
    held_up_then_recovered(Database::Mysql, Hold::Table).await;
}

/// More calls stalled on one locked row than the pool has connections each fail in time,
/// and, with the row still locked, a call on another key finds a connection and succeeds:
/// a connection whose statement was given up on does not keep its slot in the pool.
async fn stalled_calls_leave_the_pool_usable(database: &str, store: &SqlStore, locked: &StoreKey) {
    let started = Instant::now();
    let mut stalled = JoinSet::new();
    for _ in 0..=POOL_SIZE {
        let (store, key) = (store.clone(), locked.clone());
        stalled.spawn(
            async move { tokio::time::timeout(HUNG, store.touch(&key, in_an_hour())).await },
        );
    }
    while let Some(touch) = stalled.join_next().await {
        let touch = touch
            .unwrap()
            .unwrap_or_else(|_| panic!("{database}: touch still waiting after {HUNG:?}"));
        assert!(
            matches!(touch, Err(StoreError::Unavailable { .. })),
            "{database}: {touch:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < TIMEOUT + MARGIN,
        "{database}: the stalled calls took {elapsed:?}"
    );

    let other = new_key();
    let created = tokio::time::timeout(HUNG, store.create(&other, b"fresh", in_an_hour()))
        .await
        .unwrap_or_else(|_| panic!("{database}: create still waiting after {HUNG:?}"));
    assert!(created.is_ok(), "{database}: {created:?}");
    let loaded = store.load(&other).await.unwrap().unwrap();
    assert_eq!(loaded.value(), b"fresh", "{database}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stalled_on_a_postgres_row_lock_do_not_use_up_the_pool() {
    held_up_then_recovered(Database::Postgres, Hold::Row).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stalled_on_a_mysql_row_lock_do_not_use_up_the_pool() {
    held_up_then_recovered(Database::Mysql, Hold::Row).await;
}
