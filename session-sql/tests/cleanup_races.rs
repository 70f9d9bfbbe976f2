//! The expired rows' cleanup against a write that makes a row live again meanwhile: a
//! `create` that takes over an expired session's row.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use common::{postgres_url, unique};
use session_core::store::{Store, StoreKey};
use session_core::{IdLength, SessionId};
use session_sql::SqlStore;
use sqlx::Connection as _;

fn unix_millis(at: SystemTime) -> i64 {
    i64::try_from(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// PostgreSQL re-checks only the conditions on the row it deletes once the row lock it
/// waited for is released: a condition inside a subquery was read from the old snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_spares_a_row_a_create_took_over_meanwhile() {
    let schema = unique("cleanup");
    let store = SqlStore::builder(postgres_url())
        .schema(&schema)
        .connect()
        .await
        .unwrap();
    let key = StoreKey::new("race:", &SessionId::generate(IdLength::default()).unwrap());
    // An expired session's row, not yet cleaned up.
    store
        .create(&key, b"old", SystemTime::now() - Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.load(&key).await.unwrap().is_none());

    // A create of the same id takes the row over: the store's own statement, held open in
    // a transaction so that the cleanup starts while it is under way.
    let mut writer = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let mut tx = writer.begin().await.unwrap();
    let now = unix_millis(SystemTime::now());
    let taken = sqlx::query(&format!(
        "UPDATE \"{schema}\".sessions SET data = $1, expires_at = $2, created_at = $3, \
         revision = 1, user_key = NULL WHERE id = $4 AND expires_at <= $5"
    ))
    .bind(&b"new"[..])
    .bind(now + 3_600_000)
    .bind(now)
    .bind(key.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1);

    let cleanup = tokio::spawn({
        let store = store.clone();
        async move { store.delete_expired().await }
    });
    // Until the cleanup waits for the row's lock.
    let mut watcher = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let mut waited = Duration::ZERO;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE%' AND query LIKE $1",
        )
        .bind(format!("%\"{schema}\"%"))
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(waited < Duration::from_secs(10), "the cleanup never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    tx.commit().await.unwrap();

    let removed = cleanup.await.unwrap().unwrap();
    let loaded = store.load(&key).await.unwrap();
    assert!(
        loaded.as_ref().is_some_and(|l| l.value() == b"new"),
        "the cleanup removed {removed} row(s), the live session taken over among them: \
         load answers {loaded:?}"
    );
}
