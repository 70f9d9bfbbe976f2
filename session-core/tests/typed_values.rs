//! A struct of the application's in the session, through `SessionValue`: read back typed
//! with a default, changed in place, taken out, and kept whole when two requests change it
//! at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use serde::{Deserialize, Serialize};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::{Config, Keyring, MemoryStore, SessionValue, ValueError};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

impl SessionValue for Cart {
    const KEY: &'static str = "cart";
}

fn manager() -> SessionManager {
    let config = Config::builder(Keyring::new([[7u8; 32]]).unwrap())
        .build()
        .unwrap();
    SessionManager::new(MemoryStore::new(), config)
}

async fn save(manager: &SessionManager, state: SessionState) -> Option<RequestCookie> {
    match manager.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            Some(manager.verify([pair.as_str()]))
        }
        _ => None,
    }
}

fn add(item: &'static str) -> impl Fn(&mut Cart) + Send + Sync + 'static {
    move |cart: &mut Cart| cart.items.push(item.to_owned())
}

#[tokio::test]
async fn a_value_reads_back_typed_with_a_default() {
    let sessions = manager();
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    assert_eq!(state.value::<Cart>().unwrap(), Cart::default());
    assert!(!state.is_modified(), "reading the default stored nothing");

    state
        .set_value(&Cart {
            items: vec!["pen".to_owned()],
        })
        .unwrap();
    assert_eq!(
        state.get_value("cart"),
        Some(&serde_json::json!({"items": ["pen"]}))
    );
    let cookie = save(&sessions, state).await.unwrap();

    let mut state = sessions.load(cookie).await.unwrap();
    assert_eq!(state.value::<Cart>().unwrap().items, ["pen"]);
    let taken = state.take_value::<Cart>().unwrap();
    assert_eq!(taken.unwrap().items, ["pen"]);
    assert!(!state.contains("cart"));
    assert_eq!(state.take_value::<Cart>().unwrap(), None);
}

#[tokio::test]
async fn a_stored_value_of_another_shape_is_an_error_and_stays() {
    let mut state = SessionState::new(true);
    state.insert("cart", "not a cart").unwrap();
    assert!(matches!(
        state.value::<Cart>(),
        Err(ValueError::Deserialize { .. })
    ));
    assert!(state.take_value::<Cart>().is_err());
    assert_eq!(
        state.get::<String>("cart").unwrap().as_deref(),
        Some("not a cart")
    );
}

#[tokio::test]
async fn two_requests_that_change_one_value_both_count() {
    let sessions = manager();
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.update_value(add("pen")).unwrap();
    let cookie = save(&sessions, state).await.unwrap();

    // Both load the cart with the pen, then each adds an item and writes back.
    let mut first = sessions.load(cookie.clone()).await.unwrap();
    let mut second = sessions.load(cookie.clone()).await.unwrap();
    assert_eq!(
        first.update_value(add("book")).unwrap().items,
        ["pen", "book"]
    );
    assert_eq!(
        second.update_value(add("lamp")).unwrap().items,
        ["pen", "lamp"]
    );
    assert!(save(&sessions, first).await.is_none());
    assert!(save(&sessions, second).await.is_none());

    let state = sessions.load(cookie).await.unwrap();
    assert_eq!(
        state.value::<Cart>().unwrap().items,
        ["pen", "book", "lamp"]
    );
}
