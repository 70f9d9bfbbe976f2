//! A task that outlives its handler and reaches the session through the request it kept
//! gets `Finished`, as one that kept the `Session` does, never a session whose changes
//! are silently dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::cell::RefCell;

use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, FromRequest as _, HttpRequest};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{Keyring, MemoryStore};

thread_local! {
    /// A handler's request kept past its response, as a spawned task might keep it.
    static KEPT: RefCell<Option<HttpRequest>> = const { RefCell::new(None) };
}

#[actix_web::test]
async fn extracting_the_session_after_the_response_answers_finished() {
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                MemoryStore::new(),
                Keyring::new([[4u8; 32]]).unwrap(),
            ))
            .route(
                "/keep",
                web::get().to(|req: HttpRequest| async move {
                    KEPT.with(|kept| *kept.borrow_mut() = Some(req));
                    "kept"
                }),
            )
            .route(
                "/read",
                web::get().to(|s: Session| async move {
                    Ok::<_, SessionError>(s.get::<String>("user")?.unwrap_or_default())
                }),
            ),
    )
    .await;
    let response = test::call_service(&app, TestRequest::get().uri("/keep").to_request()).await;
    assert!(response.headers().get(SET_COOKIE).is_none());
    let request = KEPT.with(|kept| kept.borrow_mut().take()).unwrap();

    // The response has gone: a write now could never reach the store or the browser.
    let written = match Session::extract(&request).await {
        Ok(session) => session.insert("user", "ada"),
        Err(error) => Err(error),
    };
    assert!(
        matches!(written, Err(SessionError::Finished)),
        "a write after the response was accepted and lost: {written:?}"
    );
}
