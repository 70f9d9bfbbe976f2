//! A write that leaves a key as it was loaded (an equal `insert`, a `remove` of an absent
//! key, an `update` whose closure returns the loaded value) still counts for the
//! `update`s of that key that follow it: on a conflict, this request's value for the key
//! is the one those writes make, not its closures replayed alone onto the other
//! request's value (which would be neither request's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::{Config, Keyring, MemoryStore};

fn manager() -> SessionManager {
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    SessionManager::new(MemoryStore::new(), config)
}

async fn stored(sessions: &SessionManager, n: Option<i64>) -> RequestCookie {
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("keep", true).unwrap();
    if let Some(n) = n {
        state.insert("n", n).unwrap();
    }
    let CookieUpdate::Set(header) = sessions.save(state).await.unwrap() else {
        panic!("a new session sets a cookie")
    };
    sessions.verify([header.split(';').next().unwrap()])
}

/// Runs `ours` and a concurrent request that sets `n` to 5; the other commits first.
async fn race(loaded: Option<i64>, ours: impl FnOnce(&mut SessionState)) -> Option<i64> {
    let sessions = manager();
    let cookie = stored(&sessions, loaded).await;
    let mut a = sessions.load(cookie.clone()).await.unwrap();
    let mut b = sessions.load(cookie.clone()).await.unwrap();
    ours(&mut a);
    b.insert("n", 5).unwrap();
    sessions.save(b).await.unwrap();
    sessions.save(a).await.unwrap();
    sessions
        .load(cookie)
        .await
        .unwrap()
        .get::<i64>("n")
        .unwrap()
}

/// `insert("n", 1); update("n", +1)`: this request's value for `n` is 2 whatever was
/// stored; written last, it wins.
#[tokio::test]
async fn an_equal_insert_before_an_update_makes_its_value_final() {
    let n = race(Some(1), |a| {
        a.insert("n", 1).unwrap(); // reset (equal to what was loaded)
        assert_eq!(
            a.update("n", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap(),
            2
        );
    })
    .await;
    assert_eq!(
        n,
        Some(2),
        "the reset was dropped: +1 replayed onto the other request's 5"
    );
}

/// `remove("n"); update("n", +1)` on a session without `n`: this request's value is 1.
#[tokio::test]
async fn a_remove_of_an_absent_key_before_an_update_makes_its_value_final() {
    let n = race(None, |a| {
        a.remove("n");
        assert_eq!(
            a.update("n", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap(),
            1
        );
    })
    .await;
    assert_eq!(
        n,
        Some(1),
        "the remove was dropped: +1 replayed onto the other request's 5"
    );
}

/// `update(min 1)` (no change to the loaded 1), then `update(+1)`: both are replayed on
/// the other request's 5, giving 2; the second alone would give 6, which no order of the
/// two requests produces.
#[tokio::test]
async fn a_closure_that_changed_nothing_is_replayed_before_a_later_one() {
    let n = race(Some(1), |a| {
        a.update("n", |n: Option<i64>| n.unwrap_or(0).min(1))
            .unwrap();
        a.update("n", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap();
    })
    .await;
    assert_eq!(n, Some(2), "only the second closure was replayed");
}

/// An equal `insert` alone changes nothing: the other request's value stays, although
/// this request writes the session back for another key.
#[tokio::test]
async fn an_equal_insert_alone_keeps_the_other_requests_value() {
    let n = race(Some(1), |a| {
        a.insert("n", 1).unwrap();
        a.insert("other", true).unwrap();
    })
    .await;
    assert_eq!(n, Some(5));
}

/// Nor does an equal `insert` alone make the session modified.
#[tokio::test]
async fn an_equal_insert_alone_is_no_modification() {
    let sessions = manager();
    let cookie = stored(&sessions, Some(1)).await;
    let mut state = sessions.load(cookie).await.unwrap();
    state.insert("n", 1).unwrap();
    state.remove("absent");
    state.update("n", |n: Option<i64>| n.unwrap_or(0)).unwrap();
    assert!(!state.is_modified());
    assert_eq!(state.changes().count(), 0);
    assert_eq!(sessions.save(state).await.unwrap(), CookieUpdate::Keep);
}
