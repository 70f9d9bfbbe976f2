//! The absolute timeout follows the configuration in force, counted from the session's
//! creation, whatever was configured when the session was stored; a login
//! (`regenerate()`) starts a new one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::{Config, ConfigBuilder, Keyring, MemoryStore, SharedStore};

const TIMEOUT: Duration = Duration::from_millis(1200);

fn manager(store: &SharedStore, configure: fn(ConfigBuilder) -> ConfigBuilder) -> SessionManager {
    let keyring = Keyring::new([[7u8; 32]]).unwrap();
    let config = configure(Config::builder(keyring)).build().unwrap();
    SessionManager::new(store.clone(), config)
}

async fn save(
    manager: &SessionManager,
    state: session_core::adapter::SessionState,
) -> RequestCookie {
    match manager.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            manager.verify([pair.as_str()])
        }
        other => panic!("expected a cookie, got {other:?}"),
    }
}

/// Stores a session with `user` under a manager configured by `configure`.
async fn logged_in(manager: &SessionManager) -> RequestCookie {
    let mut state = manager.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", "ada").unwrap();
    save(manager, state).await
}

fn store() -> SharedStore {
    SharedStore::new(MemoryStore::new())
}

#[tokio::test]
async fn a_timeout_configured_later_applies_to_stored_sessions() {
    let store = store();
    let cookie = logged_in(&manager(&store, |b| b)).await;
    tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
    let strict = manager(&store, |b| b.absolute_timeout(TIMEOUT));
    let state = strict.load(cookie).await.unwrap();
    assert!(
        state.is_empty(),
        "a session stored without an absolute timeout outlived the one now configured"
    );
}

#[tokio::test]
async fn a_lowered_timeout_shortens_stored_sessions() {
    let store = store();
    let lenient = manager(&store, |b| b.absolute_timeout(Duration::from_secs(3600)));
    let cookie = logged_in(&lenient).await;
    tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
    let strict = manager(&store, |b| b.absolute_timeout(TIMEOUT));
    let state = strict.load(cookie).await.unwrap();
    assert!(
        state.is_empty(),
        "a stored session kept the longer absolute timeout it was created under"
    );
}

#[tokio::test]
async fn regenerate_starts_a_new_absolute_lifetime() {
    let store = store();
    let cookie = logged_in(&manager(&store, |b| b)).await;
    // Old enough that a lifetime counted from its creation would be nearly over.
    tokio::time::sleep(TIMEOUT / 2 + Duration::from_millis(100)).await;
    let strict = manager(&store, |b| b.absolute_timeout(TIMEOUT));
    let mut state = strict.load(cookie).await.unwrap();
    assert_eq!(state.get::<String>("user").unwrap().as_deref(), Some("ada"));
    state.regenerate();
    let cookie = save(&strict, state).await;
    tokio::time::sleep(TIMEOUT / 2).await;
    let state = strict.load(cookie.clone()).await.unwrap();
    assert_eq!(
        state.get::<String>("user").unwrap().as_deref(),
        Some("ada"),
        "the login's new lifetime was counted from the old session's creation"
    );
    tokio::time::sleep(TIMEOUT / 2 + Duration::from_millis(100)).await;
    assert!(strict.load(cookie).await.unwrap().is_empty());
}
