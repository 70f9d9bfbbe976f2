//! Table creation under concurrency, expired-row cleanup at scale, the migration text, the
//! upgrade of a table made by the previous schema (no revision column), and what the
//! conditional writes leave in the rows, on every database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use common::{mysql_url, postgres_url, unique};
use session_core::{IdLength, Revision, SessionId, Store, StoreError, StoreKey};
use session_sql::{SqlPool, SqlStore, SqlStoreBuilder};

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

/// Runs `sql`, one or more statements, as it is.
async fn run_sql(pool: &SqlPool, sql: &str) {
    match pool {
        SqlPool::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        SqlPool::MySql(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        SqlPool::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        _ => unreachable!("all three databases are compiled in"),
    }
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

/// A table as the previous schema made it, without the revision column, on one database.
struct Legacy {
    database: &'static str,
    pool: SqlPool,
    /// A builder for this table.
    builder: SqlStoreBuilder,
    /// The table's qualified, quoted name.
    table: String,
    /// Its name as `SqlStore::migration` takes it.
    name: String,
    schema: Option<String>,
}

impl Legacy {
    /// Inserts a row the way the previous version's `create` did: no revision.
    async fn insert(&self, key: &StoreKey, data: &str, expires_at: SystemTime) {
        let hex: String = data.bytes().map(|b| format!("{b:02x}")).collect();
        let bytes = match self.pool {
            SqlPool::Postgres(_) => format!("'\\x{hex}'::bytea"),
            _ => format!("X'{hex}'"),
        };
        let sql = format!(
            "INSERT INTO {} (id, data, expires_at, created_at) VALUES ('{}', {bytes}, {}, 0)",
            self.table,
            key.as_str(),
            unix_millis(expires_at)
        );
        run_sql(&self.pool, &sql).await;
    }

    async fn store(&self) -> SqlStore {
        self.builder
            .clone()
            .with_pool(self.pool.clone())
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.database))
    }

    fn migration(&self) -> String {
        let dialect = self.pool.dialect();
        SqlStore::migration(dialect, &self.name, self.schema.as_deref()).unwrap()
    }
}

/// A table of the previous schema on each database (PostgreSQL: in a fresh schema;
/// SQLite: in a fresh file), made by that schema's own DDL.
async fn legacy_tables(label: &str) -> Vec<Legacy> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-sql");
    std::fs::create_dir_all(&dir).unwrap();
    let (schema, table) = (unique(label), unique(label));

    let postgres = SqlPool::from(sqlx::PgPool::connect(&postgres_url()).await.unwrap());
    run_sql(
        &postgres,
        &format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".\"sessions\" (id TEXT PRIMARY KEY, \
             data BYTEA NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS \"sessions_expires_at\" ON \"{schema}\".\"sessions\" (expires_at)"
        ),
    )
    .await;

    let mysql = SqlPool::from(sqlx::MySqlPool::connect(&mysql_url()).await.unwrap());
    run_sql(
        &mysql,
        &format!(
            "CREATE TABLE IF NOT EXISTS `{table}` (id VARCHAR(255) CHARACTER SET ascii \
             COLLATE ascii_bin NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL, \
             expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, \
             INDEX `{table}_expires_at` (expires_at))"
        ),
    )
    .await;

    let file = dir.join(format!("{}.db", unique(label)));
    let sqlite = SqlPool::from(
        sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap(),
    );
    run_sql(
        &sqlite,
        "CREATE TABLE IF NOT EXISTS \"sessions\" (id TEXT NOT NULL PRIMARY KEY, \
         data BLOB NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS \"sessions_expires_at\" ON \"sessions\" (expires_at)",
    )
    .await;

    vec![
        Legacy {
            database: "postgres",
            pool: postgres,
            builder: SqlStore::builder().schema(&schema),
            table: format!("\"{schema}\".\"sessions\""),
            name: "sessions".to_owned(),
            schema: Some(schema),
        },
        Legacy {
            database: "mysql",
            pool: mysql,
            builder: SqlStore::builder().table(&table),
            table: format!("`{table}`"),
            name: table,
            schema: None,
        },
        Legacy {
            database: "sqlite",
            pool: sqlite,
            builder: SqlStore::builder(),
            table: "\"sessions\"".to_owned(),
            name: "sessions".to_owned(),
            schema: None,
        },
    ]
}

/// What a row written before revisions existed must still do: load as unversioned, take
/// an update or a conditional delete at `UNVERSIONED` once, and refuse a second one.
async fn legacy_rows_stay_usable(database: &str, store: &SqlStore, rows: [&StoreKey; 3]) {
    let [updated, deleted, touched] = rows;
    let loaded = store.load(updated).await.unwrap().expect(database);
    assert_eq!(
        (loaded.value(), loaded.revision()),
        (&b"old"[..], Revision::UNVERSIONED),
        "{database}"
    );

    let next = store
        .update(updated, b"new", in_an_hour(), Revision::UNVERSIONED)
        .await
        .unwrap_or_else(|e| panic!("{database}: {e:?}"));
    assert_ne!(next, Revision::UNVERSIONED, "{database}");
    let loaded = store.load(updated).await.unwrap().unwrap();
    assert_eq!(
        (loaded.value(), loaded.revision()),
        (&b"new"[..], next),
        "{database}"
    );
    match store
        .update(updated, b"lost", in_an_hour(), Revision::UNVERSIONED)
        .await
    {
        Err(StoreError::Conflict {
            current: Some(current),
        }) => assert_eq!(
            (current.value(), current.revision()),
            (&b"new"[..], next),
            "{database}"
        ),
        other => panic!("{database}: expected a conflict with the current row, got {other:?}"),
    }

    assert!(
        matches!(
            store.delete_if_unchanged(deleted, Revision::FIRST).await,
            Err(StoreError::Conflict { current: Some(ref c) }) if c.revision() == Revision::UNVERSIONED
        ),
        "{database}"
    );
    store
        .delete_if_unchanged(deleted, Revision::UNVERSIONED)
        .await
        .unwrap_or_else(|e| panic!("{database}: {e:?}"));
    assert!(store.load(deleted).await.unwrap().is_none(), "{database}");

    store.touch(touched, in_an_hour()).await.unwrap();
    let loaded = store.load(touched).await.unwrap().unwrap();
    assert_eq!(loaded.revision(), Revision::UNVERSIONED, "{database}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_the_previous_schema_gets_the_revision_column_on_connect() {
    for legacy in legacy_tables("upgrade").await {
        let database = legacy.database;
        let rows = [new_key(), new_key(), new_key()];
        for key in &rows {
            legacy.insert(key, "old", in_an_hour()).await;
        }
        // Twice: the second start finds the column and changes nothing.
        legacy.store().await;
        let store = legacy.store().await;
        legacy_rows_stay_usable(database, &store, [&rows[0], &rows[1], &rows[2]]).await;
        // New sessions in the upgraded table are versioned from the start.
        let key = new_key();
        let first = store.create(&key, b"fresh", in_an_hour()).await.unwrap();
        assert_eq!(first, Revision::FIRST, "{database}");
        store
            .update(&key, b"fresher", in_an_hour(), first)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_upgrades_a_table_of_the_previous_schema_and_runs_twice() {
    for legacy in legacy_tables("migrate").await {
        let database = legacy.database;
        if database == "sqlite" {
            // SQLite cannot add a column conditionally in SQL; the store's own start does
            // (the test above).
            continue;
        }
        let rows = [new_key(), new_key(), new_key()];
        for key in &rows {
            legacy.insert(key, "old", in_an_hour()).await;
        }
        run_sql(&legacy.pool, &legacy.migration()).await;
        run_sql(&legacy.pool, &legacy.migration()).await;
        let store = legacy
            .builder
            .clone()
            .create_table(false)
            .with_pool(legacy.pool.clone())
            .await
            .unwrap();
        legacy_rows_stay_usable(database, &store, [&rows[0], &rows[1], &rows[2]]).await;
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
        let mut builder = SqlStore::builder().table(&table).create_table(false);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        let store = builder.with_pool(pool.clone()).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_upgrading_a_table_of_the_previous_schema_at_once_all_succeed() {
    for legacy in legacy_tables("upgrade_race").await {
        let database = legacy.database;
        let key = new_key();
        legacy.insert(&key, "old", in_an_hour()).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (builder, pool) = (legacy.builder.clone(), legacy.pool.clone());
                tokio::spawn(async move { builder.with_pool(pool).await })
            })
            .collect();
        for task in tasks {
            let store = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{database}: {e:?}"));
            let loaded = store.load(&key).await.unwrap().unwrap();
            assert_eq!(loaded.revision(), Revision::UNVERSIONED, "{database}");
        }
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
