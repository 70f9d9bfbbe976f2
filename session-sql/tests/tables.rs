//! Table creation under concurrency, expired-row cleanup at scale, the migration text, and
//! what the conditional writes leave in the rows, on every database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use common::{mysql_url, postgres_url, run_sql, stores, unique};
use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_core::{IdLength, SessionId};
use session_sql::{SqlPool, SqlStore, TableSetup};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_creating_the_table_at_once_all_succeed() {
    for (database, url, schema) in [
        ("postgres", postgres_url(), Some(unique("race"))),
        ("mysql", mysql_url(), None),
    ] {
        let table = unique("race");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (url, table, schema) = (url.clone(), table.clone(), schema.clone());
                tokio::spawn(async move {
                    let mut builder = SqlStore::builder(url).table(table);
                    if let Some(schema) = schema {
                        builder = builder.schema(schema);
                    }
                    builder.connect().await
                })
            })
            .collect();
        for task in tasks {
            let store = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{database}: {e:?}"));
            let key = StoreKey::new("race:", &SessionId::generate(IdLength::default()).unwrap());
            store
                .create(&key, b"x", SystemTime::now() + Duration::from_secs(60))
                .await
                .unwrap();
        }
    }
}

/// Inserts `count` rows expiring at `expires_at` in multi-row statements.
async fn bulk_insert(store: &SqlStore, table: &str, count: usize, expires_at: i64, tag: &str) {
    for chunk_start in (0..count).step_by(1000) {
        let rows: Vec<String> = (chunk_start..(chunk_start + 1000).min(count))
            .map(|i| format!("('bulk:{tag}:{i}', X'7B7D', {expires_at}, 0, 1)"))
            .collect();
        let values = rows.join(",");
        match store.pool() {
            SqlPool::Postgres(pool) => {
                let values = values.replace("X'7B7D'", "'\\x7b7d'::bytea");
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at, revision) VALUES {values}"
                );
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            SqlPool::MySql(pool) => {
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at, revision) VALUES {values}"
                );
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            SqlPool::Sqlite(pool) => {
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at, revision) VALUES {values}"
                );
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            _ => unreachable!("all three databases are compiled in"),
        }
    }
}

async fn count(store: &SqlStore, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match store.pool() {
        SqlPool::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        SqlPool::MySql(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        SqlPool::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        _ => unreachable!("all three databases are compiled in"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delete_expired_leaves_exactly_the_live_rows() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (database, store, table) in stores("cleanup").await {
        bulk_insert(&store, &table, 100_000, now - 1_000, "old").await;
        bulk_insert(&store, &table, 1_000, now + 3_600_000, "live").await;
        let removed = store.delete_expired().await.unwrap();
        assert_eq!(removed, 100_000, "{database}");
        assert_eq!(count(&store, &table).await, 1_000, "{database}");
    }
}

#[tokio::test]
async fn the_migration_is_the_ddl_the_store_runs() {
    let sql = SqlStore::migration(session_sql::Dialect::Sqlite, "web_sessions", None).unwrap();
    let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
    // The store then finds its table and uses it without creating anything.
    let store = SqlStore::from_pool(pool)
        .table("web_sessions")
        .table_setup(TableSetup::Existing)
        .connect()
        .await
        .unwrap();
    let key = StoreKey::new("m:", &SessionId::generate(IdLength::default()).unwrap());
    store
        .create(&key, b"{}", SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.load(&key).await.unwrap().is_some());
    assert!(SqlStore::migration(session_sql::Dialect::Postgres, "x; DROP TABLE y", None).is_err());
}

fn new_key() -> StoreKey {
    StoreKey::new("rev:", &SessionId::generate(IdLength::default()).unwrap())
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The row under `key` as stored: data, expires_at, revision.
async fn stored_row(pool: &SqlPool, table: &str, key: &StoreKey) -> Option<(Vec<u8>, i64, i64)> {
    let sql = format!(
        "SELECT data, expires_at, revision FROM {table} WHERE id = '{}'",
        key.as_str()
    );
    match pool {
        SqlPool::Postgres(pool) => sqlx::query_as(&sql).fetch_optional(pool).await.unwrap(),
        SqlPool::MySql(pool) => sqlx::query_as(&sql).fetch_optional(pool).await.unwrap(),
        SqlPool::Sqlite(pool) => sqlx::query_as(&sql).fetch_optional(pool).await.unwrap(),
        _ => unreachable!("all three databases are compiled in"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_of_a_new_table_runs_twice_on_every_database() {
    let sqlite = SqlPool::from(sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap());
    let postgres = SqlPool::from(sqlx::PgPool::connect(&postgres_url()).await.unwrap());
    let mysql = SqlPool::from(sqlx::MySqlPool::connect(&mysql_url()).await.unwrap());
    let schema = unique("twice");
    for (pool, table, schema) in [
        (postgres, "sessions".to_owned(), Some(schema.as_str())),
        (mysql, unique("twice"), None),
        (sqlite, "sessions".to_owned(), None),
    ] {
        let sql = SqlStore::migration(pool.dialect(), &table, schema).unwrap();
        run_sql(&pool, &sql).await;
        run_sql(&pool, &sql).await;
        let mut builder = SqlStore::from_pool(pool.clone())
            .table(&table)
            .table_setup(TableSetup::Existing);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        let store = builder.connect().await.unwrap();
        let key = new_key();
        let first = store.create(&key, b"v1", in_an_hour()).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.revision(), first, "{:?}", pool.dialect());
        store
            .update(&key, b"v2", in_an_hour(), first)
            .await
            .unwrap();
    }
}

/// The rows themselves: a stale update or conditional delete leaves the row exactly as it
/// was, a touch moves only the expiry, and the column holds the revision the store reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_leave_the_rows_as_the_contract_says() {
    for (database, store, table) in stores("rows").await {
        let pool = store.pool();
        let key = new_key();
        let first = store.create(&key, b"v1", in_an_hour()).await.unwrap();
        let second = store
            .update(&key, b"v2", in_an_hour(), first)
            .await
            .unwrap();
        let row = stored_row(pool, &table, &key).await.unwrap();
        assert_eq!(row.0, b"v2", "{database}");
        assert_eq!(
            row.2 as u64,
            second.get(),
            "{database}: the stored revision"
        );

        let stale = store.update(&key, b"lost", in_an_hour() + Duration::from_secs(60), first);
        assert!(
            matches!(stale.await, Err(StoreError::Conflict { .. })),
            "{database}"
        );
        assert_eq!(
            stored_row(pool, &table, &key).await.unwrap(),
            row,
            "{database}"
        );
        assert!(
            matches!(
                store.delete_if_unchanged(&key, first).await,
                Err(StoreError::Conflict { .. })
            ),
            "{database}"
        );
        assert_eq!(
            stored_row(pool, &table, &key).await.unwrap(),
            row,
            "{database}"
        );

        let later = in_an_hour() + Duration::from_secs(600);
        store.touch(&key, later).await.unwrap();
        let touched = stored_row(pool, &table, &key).await.unwrap();
        assert_eq!(
            touched,
            (row.0.clone(), unix_millis(later), row.2),
            "{database}: a touch moves the expiry only"
        );
    }
}

/// A create that takes over the row of an expired session starts it again at the first
/// revision, as a create into an empty table does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_over_an_expired_row_starts_at_the_first_revision() {
    for (database, store, table) in stores("takeover").await {
        let key = new_key();
        let first = store.create(&key, b"v1", in_an_hour()).await.unwrap();
        let second = store
            .update(&key, b"v2", in_an_hour(), first)
            .await
            .unwrap();
        assert_ne!(second, Revision::FIRST, "{database}");
        let expire = format!(
            "UPDATE {table} SET expires_at = 1 WHERE id = '{}'",
            key.as_str()
        );
        run_sql(store.pool(), &expire).await;
        let created = store.create(&key, b"again", in_an_hour()).await.unwrap();
        assert_eq!(created, Revision::FIRST, "{database}");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            (loaded.value(), loaded.revision()),
            (&b"again"[..], Revision::FIRST),
            "{database}"
        );
        // The old session's revisions do not write into the new one.
        assert!(
            matches!(
                store.update(&key, b"stale", in_an_hour(), second).await,
                Err(StoreError::Conflict { .. })
            ),
            "{database}"
        );
    }
}

/// The connections the setup opened run on the runtime that made the store (an app's
/// `main`), which would then have to wake the worker on each answer: none is kept, and
/// the pool opens new ones where the requests are.
#[tokio::test]
async fn a_store_from_a_url_keeps_no_connection_its_setup_opened() {
    for (database, url) in [("postgres", postgres_url()), ("mysql", mysql_url())] {
        let store = SqlStore::builder(url)
            .table(unique("idle"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{database}: {e:?}"));
        let open = || match store.pool() {
            SqlPool::Postgres(pool) => pool.size(),
            SqlPool::MySql(pool) => pool.size(),
            other => panic!("{other:?}"),
        };
        assert_eq!(open(), 0, "{database}: connections left by the setup");
        let key = StoreKey::new("idle:", &SessionId::generate(IdLength::default()).unwrap());
        assert!(store.load(&key).await.unwrap().is_none(), "{database}");
        assert_eq!(open(), 1, "{database}: the pool opens one as needed");
    }
}

/// A pool passed in keeps what its setup opened until the application lets it go with
/// `SqlPool::close_idle`; the store then works on connections opened as needed.
#[tokio::test]
async fn close_idle_lets_go_of_a_pool_s_setup_connections() {
    for (database, url) in [("postgres", postgres_url()), ("mysql", mysql_url())] {
        let pool = match database {
            "postgres" => SqlPool::from(sqlx::PgPool::connect(&url).await.unwrap()),
            _ => SqlPool::from(sqlx::MySqlPool::connect(&url).await.unwrap()),
        };
        let open = || match &pool {
            SqlPool::Postgres(pool) => pool.size(),
            SqlPool::MySql(pool) => pool.size(),
            other => panic!("{other:?}"),
        };
        let store = SqlStore::from_pool(pool.clone())
            .table(unique("handed"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{database}: {e:?}"));
        assert!(
            open() >= 1,
            "{database}: the pool kept no connection of its setup"
        );
        pool.close_idle(Duration::from_secs(3)).await;
        assert_eq!(open(), 0, "{database}: connections left after close_idle");
        let key = StoreKey::new(
            "handed:",
            &SessionId::generate(IdLength::default()).unwrap(),
        );
        assert!(store.load(&key).await.unwrap().is_none(), "{database}");
        assert_eq!(open(), 1, "{database}: the pool opens one as needed");
    }
}
