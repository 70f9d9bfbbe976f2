//! Where the SQL tests find their databases, and names that keep test runs apart.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test files

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use session_sql::{SqlPool, SqlStore};
use sqlx::Row as _;

pub(crate) fn postgres_url() -> String {
    std::env::var("SESSION_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("SESSION_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

fn seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A name no other test run uses: `run_<unix seconds>_<pid>_<label>`.
pub(crate) fn unique(label: &str) -> String {
    static SALT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SALT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("run_{}_{}_{n}_{label}", seconds(), std::process::id())
}

/// This process's name for `label`, the same on every call.
pub(crate) fn per_run(label: &'static str) -> &'static str {
    static NAMES: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static str)>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut names = names.lock().unwrap();
    if let Some((_, name)) = names.iter().find(|(l, _)| *l == label) {
        return name;
    }
    let name: &'static str = Box::leak(unique(label).into_boxed_str());
    names.push((label, name));
    name
}

/// Whether a `run_<seconds>_...` name is from a run that ended at least an hour ago.
fn stale(name: &str) -> bool {
    name.strip_prefix("run_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|started| started + 3600 < seconds())
}

/// Drops the schemas earlier runs left in PostgreSQL.
pub(crate) async fn drop_stale_postgres() {
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'run\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in rows {
        let name: String = row.get(0);
        if stale(&name) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(&pool)
                .await;
        }
    }
}

/// Drops the tables earlier runs left in MySQL.
pub(crate) async fn drop_stale_mysql() {
    let pool = sqlx::MySqlPool::connect(&mysql_url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'run\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in rows {
        let name: String = row.get(0);
        if stale(&name) {
            let _ = sqlx::query(&format!("DROP TABLE IF EXISTS `{name}`"))
                .execute(&pool)
                .await;
        }
    }
}

/// The three databases, each with a fresh table (PostgreSQL: in a fresh schema), and the
/// table's qualified name.
pub(crate) async fn stores(label: &str) -> Vec<(&'static str, SqlStore, String)> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-sql");
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!(
        "sqlite://{}",
        dir.join(format!("{}.db", unique(label))).display()
    );
    let (schema, table) = (unique(label), unique(label));
    let postgres = SqlStore::builder(postgres_url())
        .schema(&schema)
        .connect()
        .await
        .unwrap();
    let mysql = SqlStore::builder(mysql_url())
        .table(&table)
        .connect()
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

/// Runs `sql`, one or more statements, as it is.
pub(crate) async fn run_sql(pool: &SqlPool, sql: &str) {
    match pool {
        SqlPool::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        SqlPool::MySql(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        SqlPool::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        _ => unreachable!("all three databases are compiled in"),
    }
}
