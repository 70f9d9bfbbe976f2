//! A struct of the application's in the session, through the `Session` extractor: typed,
//! defaulted, changed in place and taken out across requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::http::header::{COOKIE, SET_COOKIE};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use serde::{Deserialize, Serialize};
use session_actix::{Keyring, MemoryStore, Session, SessionError, SessionMiddleware, SessionValue};

#[derive(Default, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

impl SessionValue for Cart {
    const KEY: &'static str = "cart";
}

async fn show(session: Session) -> Result<String, SessionError> {
    Ok(session.value::<Cart>()?.items.join(","))
}

async fn add(session: Session, item: web::Path<String>) -> Result<String, SessionError> {
    let item = item.into_inner();
    let cart = session.update_value(move |cart: &mut Cart| cart.items.push(item.clone()))?;
    Ok(cart.items.len().to_string())
}

async fn checkout(session: Session) -> Result<String, SessionError> {
    let cart = session.take_value::<Cart>()?.unwrap_or_default();
    Ok(format!("bought {}", cart.items.len()))
}

#[actix_web::test]
async fn a_cart_lives_in_the_session_typed() {
    let sessions = SessionMiddleware::new(MemoryStore::new(), Keyring::new([[3u8; 32]]).unwrap());
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route("/cart", web::get().to(show))
            .route("/add/{item}", web::get().to(add))
            .route("/checkout", web::get().to(checkout)),
    )
    .await;
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = TestRequest::get().uri(path);
        if let Some(cookie) = cookie {
            request = request.insert_header((COOKIE, cookie.to_owned()));
        }
        request.to_request()
    };

    let empty = test::call_service(&app, get("/cart", None)).await;
    assert!(
        empty.headers().get(SET_COOKIE).is_none(),
        "a default is not stored"
    );
    assert_eq!(test::read_body(empty).await, "");

    let first = test::call_service(&app, get("/add/pen", None)).await;
    let cookie = first.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(test::read_body(first).await, "1");
    let second = test::call_service(&app, get("/add/book", Some(&cookie))).await;
    assert_eq!(test::read_body(second).await, "2");
    let cart = test::call_service(&app, get("/cart", Some(&cookie))).await;
    assert_eq!(test::read_body(cart).await, "pen,book");

    let bought = test::call_service(&app, get("/checkout", Some(&cookie))).await;
    assert_eq!(test::read_body(bought).await, "bought 2");
    let after = test::call_service(&app, get("/cart", Some(&cookie))).await;
    assert_eq!(test::read_body(after).await, "");
}
