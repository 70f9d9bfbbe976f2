//! Table creation under concurrency, expired-row cleanup at scale, and the migration text,
//! on every database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use common::{mysql_url, postgres_url, unique};
use session_core::{IdLength, SessionId, Store, StoreKey};
use session_sql::{SqlPool, SqlStore};

/// The three databases, each with a fresh table (PostgreSQL: in a fresh schema), and the
/// table's qualified name.
async fn stores(label: &str) -> Vec<(&'static str, SqlStore, String)> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-sql");
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!(
        "sqlite://{}",
        dir.join(format!("{}.db", unique(label))).display()
    );
    let (schema, table) = (unique(label), unique(label));
    let postgres = SqlStore::builder()
        .schema(&schema)
        .connect(&postgres_url())
        .await
        .unwrap();
    let mysql = SqlStore::builder()
        .table(&table)
        .connect(&mysql_url())
        .await
        .unwrap();
    vec![
        ("postgres", postgres, format!("\"{schema}\".sessions")),
        ("mysql", mysql, format!("`{table}`")),
        (
            "sqlite",
            SqlStore::connect(&sqlite).await.unwrap(),
            "sessions".to_owned(),
        ),
    ]
}

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
                    let mut builder = SqlStore::builder().table(table);
                    if let Some(schema) = schema {
                        builder = builder.schema(schema);
                    }
                    builder.connect(&url).await
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
            .map(|i| format!("('bulk:{tag}:{i}', X'7B7D', {expires_at}, 0)"))
            .collect();
        let values = rows.join(",");
        match store.pool() {
            SqlPool::Postgres(pool) => {
                let values = values.replace("X'7B7D'", "'\\x7b7d'::bytea");
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at) VALUES {values}"
                );
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            SqlPool::MySql(pool) => {
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at) VALUES {values}"
                );
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            SqlPool::Sqlite(pool) => {
                let sql = format!(
                    "INSERT INTO {table} (id, data, expires_at, created_at) VALUES {values}"
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
    let store = SqlStore::builder()
        .table("web_sessions")
        .create_table(false)
        .with_pool(pool)
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
