//! A database that stops answering a statement: the call fails with `Unavailable` within
//! the store's timeout, and the store works again once the database answers.
//!
//! Another connection holds a lock on the table, so the store's statement waits in the
//! database with its connection open, as it would on a frozen server or behind a network
//! that drops packets: the pool hands out a connection at once, and only a bound on the
//! statement itself ends the wait.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{mysql_url, postgres_url, unique};
use session_core::{IdLength, SessionId, Store, StoreError, StoreKey};
use session_sql::SqlStore;
use sqlx::Connection as _;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Far past the timeout: a call still waiting then never ends by itself.
const HUNG: Duration = Duration::from_secs(5);

fn new_key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// Each call fails with `Unavailable` within the timeout and a margin while the table is
/// locked.
async fn calls_fail_in_time(database: &str, store: &SqlStore, key: &StoreKey) {
    let started = Instant::now();
    let load = tokio::time::timeout(HUNG, store.load(key))
        .await
        .unwrap_or_else(|_| panic!("{database}: load still waiting after {HUNG:?}"));
    assert!(
        matches!(load, Err(StoreError::Unavailable { .. })),
        "{database}: {load:?}"
    );
    // A write that leaves the value alone: a statement given up on may still be applied
    // once the lock is gone.
    let touch = tokio::time::timeout(HUNG, store.touch(key, in_an_hour()))
        .await
        .unwrap_or_else(|_| panic!("{database}: touch still waiting after {HUNG:?}"));
    assert!(
        matches!(touch, Err(StoreError::Unavailable { .. })),
        "{database}: {touch:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < 2 * TIMEOUT + Duration::from_secs(1),
        "{database}: two calls took {elapsed:?}"
    );
}

/// Once the lock is gone the store answers again, with the record as it was.
async fn recovers(database: &str, store: &SqlStore, key: &StoreKey) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.load(key).await {
            Ok(Some(loaded)) => {
                assert_eq!(loaded.value(), b"kept", "{database}");
                return;
            }
            other => assert!(
                Instant::now() < deadline,
                "{database}: still failing: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_up_by_postgres_fails_in_time_and_the_store_recovers() {
    // A schema of its own, which a later run drops if this one fails.
    let schema = unique("stall");
    let store = SqlStore::builder()
        .schema(&schema)
        .timeout(TIMEOUT)
        .connect(&postgres_url())
        .await
        .unwrap();
    let key = new_key();
    store.create(&key, b"kept", in_an_hour()).await.unwrap();

    let mut locker = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE \"{schema}\".sessions IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *lock)
    .await
    .unwrap();
    calls_fail_in_time("postgres", &store, &key).await;
    lock.rollback().await.unwrap();
    recovers("postgres", &store, &key).await;

    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut locker)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_up_by_mysql_fails_in_time_and_the_store_recovers() {
    let table = unique("stall");
    let store = SqlStore::builder()
        .table(&table)
        .timeout(TIMEOUT)
        .connect(&mysql_url())
        .await
        .unwrap();
    let key = new_key();
    store.create(&key, b"kept", in_an_hour()).await.unwrap();

    let mut locker = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    sqlx::query(&format!("LOCK TABLES `{table}` WRITE"))
        .execute(&mut locker)
        .await
        .unwrap();
    calls_fail_in_time("mysql", &store, &key).await;
    sqlx::query("UNLOCK TABLES")
        .execute(&mut locker)
        .await
        .unwrap();
    recovers("mysql", &store, &key).await;

    sqlx::query(&format!("DROP TABLE `{table}`"))
        .execute(&mut locker)
        .await
        .unwrap();
}
