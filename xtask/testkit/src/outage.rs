//! A store whose server stops answering: each call fails in time with
//! `StoreError::Unavailable`, and the store answers again once the server does. Shared by
//! the tests that freeze a server or hold its statements up with a lock.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use session_core::store::{Store, StoreError, StoreKey};

/// Far past any timeout the tests give a store: a call still waiting then never ends by
/// itself.
pub const HUNG: Duration = Duration::from_secs(5);

/// What the bounds on a failing call allow on top of the store's timeout, for a small,
/// busy machine.
pub const MARGIN: Duration = Duration::from_secs(1);

/// Awaits `call`, which must fail with `StoreError::Unavailable`, and returns how long it
/// took; `what` names it in failures, and a call still waiting after [`HUNG`] fails the
/// test.
pub async fn unavailable<T: Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Duration {
    let started = Instant::now();
    let Ok(result) = tokio::time::timeout(HUNG, call).await else {
        panic!("{what} still waiting after {HUNG:?}");
    };
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{what}: {result:?}"
    );
    started.elapsed()
}

/// A load, then a write that leaves the value alone (a call given up on may still be
/// applied once the server answers), each `Unavailable`, together within two of the
/// store's `timeout`s and [`MARGIN`].
pub async fn calls_fail_in_time(what: &str, store: &dyn Store, key: &StoreKey, timeout: Duration) {
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let elapsed = unavailable(&format!("{what}: load"), store.load(key)).await
        + unavailable(&format!("{what}: touch"), store.touch(key, in_an_hour)).await;
    assert!(
        elapsed < 2 * timeout + MARGIN,
        "{what}: two calls took {elapsed:?}"
    );
}

/// Loads `key` until it reads back as `value`, as the store must once its server answers
/// again; still failing after `within` fails the test.
pub async fn recovers(
    what: &str,
    store: &dyn Store,
    key: &StoreKey,
    value: &[u8],
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        match store.load(key).await {
            Ok(Some(loaded)) => {
                assert_eq!(loaded.value(), value, "{what}");
                return;
            }
            other => assert!(
                Instant::now() < deadline,
                "{what}: still failing: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
