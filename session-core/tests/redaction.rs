//! Nothing a `Debug` print of the library's types shows can log someone in or reveal
//! what their session holds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::{Config, Keyring, MemoryStore};

const SECRET: &str = "keyring-secret-that-must-never-be-printed-01";
const VALUE: &str = "session-value-that-must-never-be-printed";

#[tokio::test]
async fn debug_output_holds_no_cookie_id_secret_or_value() {
    let store = MemoryStore::new();
    let config = Config::builder(Keyring::new([SECRET]).unwrap())
        .build()
        .unwrap();
    let sessions = SessionManager::new(store.clone(), config);
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", VALUE).unwrap();
    let shown_state = format!("{state:?} {:?}", state.record());
    let update = sessions.save(state).await.unwrap();
    let CookieUpdate::Set(header) = &update else {
        panic!("expected a cookie, got {update:?}");
    };
    let pair = header.split(';').next().unwrap();
    let value = pair.split_once('=').unwrap().1;
    let (id, signature) = value.split_once('.').unwrap();
    let state = sessions.load(sessions.verify([pair])).await.unwrap();
    assert_eq!(state.get::<String>("user").unwrap().as_deref(), Some(VALUE));

    let shown = [
        shown_state,
        format!("{update:?}"),
        format!("{state:?}"),
        format!("{:?}", state.record()),
        format!("{store:?}"),
        format!("{sessions:?}"),
        format!("{:?}", sessions.verify([pair])),
    ];
    for shown in shown {
        for forbidden in [SECRET, VALUE, id, signature] {
            assert!(!shown.contains(forbidden), "`{forbidden}` shows in {shown}");
        }
    }
    let update = format!("{update:?}");
    assert!(
        update.contains("HttpOnly"),
        "the attributes still show: {update}"
    );
}
