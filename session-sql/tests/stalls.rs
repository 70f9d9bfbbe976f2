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
use session_core::{IdLength, SessionId, Store, StoreError, StoreKey};
use session_sql::SqlStore;
use sqlx::Connection as _;
use tokio::task::JoinSet;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Far past the timeout: a call still waiting then never ends by itself.
const HUNG: Duration = Duration::from_secs(5);

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
        elapsed < TIMEOUT + Duration::from_secs(1),
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
    let schema = unique("stall_pool");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect(&postgres_url())
        .await
        .unwrap();
    let store = SqlStore::builder()
        .schema(&schema)
        .timeout(TIMEOUT)
        .with_pool(pool)
        .await
        .unwrap();
    let locked = new_key();
    store.create(&locked, b"kept", in_an_hour()).await.unwrap();

    let mut locker = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT id FROM \"{schema}\".sessions WHERE id = $1 FOR UPDATE"
    ))
    .bind(locked.as_str())
    .execute(&mut *lock)
    .await
    .unwrap();
    stalled_calls_leave_the_pool_usable("postgres", &store, &locked).await;
    lock.rollback().await.unwrap();
    recovers("postgres", &store, &locked).await;

    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut locker)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stalled_on_a_mysql_row_lock_do_not_use_up_the_pool() {
    let table = unique("stall_pool");
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect(&mysql_url())
        .await
        .unwrap();
    let store = SqlStore::builder()
        .table(&table)
        .timeout(TIMEOUT)
        .with_pool(pool)
        .await
        .unwrap();
    let locked = new_key();
    store.create(&locked, b"kept", in_an_hour()).await.unwrap();

    let mut locker = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query(&format!("SELECT id FROM `{table}` WHERE id = ? FOR UPDATE"))
        .bind(locked.as_str())
        .execute(&mut *lock)
        .await
        .unwrap();
    stalled_calls_leave_the_pool_usable("mysql", &store, &locked).await;
    lock.rollback().await.unwrap();
    recovers("mysql", &store, &locked).await;

    sqlx::query(&format!("DROP TABLE `{table}`"))
        .execute(&mut locker)
        .await
        .unwrap();
}
