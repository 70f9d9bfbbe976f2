//! Creating the table at start is bounded by the store's timeout too: a database that
//! holds the setup up fails it with `Unavailable` instead of leaving the start waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, Instant};

use common::{postgres_url, unique};
use session_core::StoreError;
use session_sql::SqlStore;
use sqlx::Connection as _;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Far past the timeout: a start still waiting then never ends by itself.
const HUNG: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_setup_held_up_by_postgres_fails_in_time() {
    let schema = unique("stall_setup");
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();

    // The store creates its table under this advisory lock: held elsewhere, the setup waits.
    let mut locker = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7204519331)")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = Instant::now();
    let setup = SqlStore::builder()
        .schema(&schema)
        .timeout(TIMEOUT)
        .with_pool(pool.clone());
    let store = tokio::time::timeout(HUNG, setup)
        .await
        .unwrap_or_else(|_| panic!("setup still waiting after {HUNG:?}"));
    let elapsed = started.elapsed();
    lock.rollback().await.unwrap();
    assert!(
        matches!(store, Err(StoreError::Unavailable { .. })),
        "{store:?}"
    );
    assert!(
        elapsed < TIMEOUT + Duration::from_secs(1),
        "setup took {elapsed:?}"
    );

    // Once the lock is gone the same pool sets the store up.
    SqlStore::builder()
        .schema(&schema)
        .timeout(TIMEOUT)
        .with_pool(pool)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut locker)
        .await
        .unwrap();
}
