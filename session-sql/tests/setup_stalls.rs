//! Creating the table at start is bounded by the store's timeout too: a database that
//! holds the setup up fails it with `Unavailable` instead of leaving the start waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::Duration;

use common::{postgres_url, unique};
use session_sql::SqlStore;
use session_testkit::outage::{self, MARGIN};
use sqlx::Connection as _;

const TIMEOUT: Duration = Duration::from_millis(300);

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
    let setup = SqlStore::from_pool(pool.clone())
        .schema(&schema)
        .timeout(TIMEOUT)
        .connect();
    let elapsed = outage::unavailable("setup", setup).await;
    lock.rollback().await.unwrap();
    assert!(elapsed < TIMEOUT + MARGIN, "setup took {elapsed:?}");

    // Once the lock is gone the same pool sets the store up.
    SqlStore::from_pool(pool)
        .schema(&schema)
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut locker)
        .await
        .unwrap();
}
