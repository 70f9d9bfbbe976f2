//! Flash messages: shown exactly once, in the request after the one that added them, and
//! never lost to an overlapping request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::{Config, Keyring, Level, MemoryStore};

fn manager() -> SessionManager {
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    SessionManager::new(MemoryStore::new(), config)
}

async fn save(manager: &SessionManager, state: SessionState) -> CookieUpdate {
    manager.save(state).await.unwrap()
}

fn cookie(manager: &SessionManager, update: &CookieUpdate) -> RequestCookie {
    let CookieUpdate::Set(header) = update else {
        panic!("expected a cookie, got {update:?}")
    };
    manager.verify([header.split(';').next().unwrap()])
}

fn texts(state: &mut SessionState) -> Vec<String> {
    let messages = state.take_flashes().unwrap();
    messages.iter().map(|m| m.text().to_owned()).collect()
}

#[tokio::test]
async fn a_message_is_shown_once_in_the_next_request() {
    let sessions = manager();
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", "ada").unwrap();
    state.flash(Level::Success, "Logged in as ada").unwrap();
    state.flash(Level::Info, "Welcome back").unwrap();
    let cookie = cookie(&sessions, &save(&sessions, state).await);

    let mut next = sessions.load(cookie.clone()).await.unwrap();
    let messages = next.take_flashes().unwrap();
    let shown: Vec<_> = messages.iter().map(|m| (m.level(), m.text())).collect();
    assert_eq!(
        shown,
        [
            (Level::Success, "Logged in as ada"),
            (Level::Info, "Welcome back")
        ]
    );
    save(&sessions, next).await;

    let mut reload = sessions.load(cookie).await.unwrap();
    assert!(texts(&mut reload).is_empty(), "shown twice");
    assert!(!reload.is_modified(), "reading no message wrote something");
    assert_eq!(
        reload.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
}

#[tokio::test]
async fn a_session_that_held_only_messages_ends_once_they_are_read() {
    let sessions = manager();
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.destroy();
    state.flash(Level::Info, "Logged out").unwrap();
    let cookie = cookie(&sessions, &save(&sessions, state).await);

    let mut next = sessions.load(cookie.clone()).await.unwrap();
    assert_eq!(texts(&mut next), ["Logged out"]);
    assert!(next.is_empty());
    assert!(matches!(
        save(&sessions, next).await,
        CookieUpdate::Remove(_)
    ));
    assert!(sessions.load(cookie).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_message_added_while_another_request_reads_them_is_kept() {
    let sessions = manager();
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", "ada").unwrap();
    state.flash(Level::Info, "first").unwrap();
    let cookie = cookie(&sessions, &save(&sessions, state).await);

    let mut reader = sessions.load(cookie.clone()).await.unwrap();
    let mut writer = sessions.load(cookie.clone()).await.unwrap();
    writer.flash(Level::Warning, "second").unwrap();
    save(&sessions, writer).await;
    assert_eq!(texts(&mut reader), ["first"]);
    save(&sessions, reader).await;

    let mut next = sessions.load(cookie).await.unwrap();
    assert_eq!(
        texts(&mut next),
        ["second"],
        "the reader took what it did not show"
    );
}
