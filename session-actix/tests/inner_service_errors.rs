//! A service inside the middleware that answers with `Err` (an auth or CSRF check written
//! as a middleware) still gets the session rules: its 4xx keeps the session's changes and
//! varies on the cookie, as a handler's 4xx does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;

use actix_web::dev::Service as _;
use actix_web::http::header::{SET_COOKIE, VARY};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, FromRequest as _, ResponseError};
use session_actix::{ErrorWithSession, Session, SessionMiddleware};
use session_core::{Keyring, MemoryStore};

#[actix_web::test]
async fn an_inner_middleware_error_keeps_the_session_and_varies_on_the_cookie() {
    let app = test::init_service(
        App::new()
            // Inside the session middleware: `wrap` order puts the last one outermost.
            .wrap_fn(|req, srv| {
                let session = Session::extract(req.request());
                let call = srv.call(req);
                async move {
                    let session = session.await?;
                    if session.get::<String>("csrf")?.is_none() {
                        // A CSRF check that hands out a token and refuses the request.
                        session.insert("csrf", "token")?;
                        drop(call);
                        return Err(actix_web::error::ErrorForbidden("no token"));
                    }
                    call.await
                }
            })
            .wrap(SessionMiddleware::new(
                MemoryStore::new(),
                Keyring::new([[3u8; 32]]).unwrap(),
            ))
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    let response = test::try_call_service(&app, TestRequest::get().uri("/").to_request()).await;
    let response = match response {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => actix_web::dev::ServiceResponse::from_err(
            error,
            TestRequest::get().uri("/").to_http_request(),
        ),
    };
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let vary: Vec<_> = response.headers().get_all(VARY).collect();
    let cookies: Vec<_> = response.headers().get_all(SET_COOKIE).collect();
    assert_eq!(vary, ["Cookie"], "a 403 that depends on the session");
    assert_eq!(cookies.len(), 1, "the token the 403 handed out was lost");

    // The token is in the store: the browser's next request passes the check.
    let cookie = cookies[0].to_str().unwrap().split(';').next().unwrap();
    let request = TestRequest::get()
        .uri("/")
        .insert_header(("Cookie", cookie))
        .to_request();
    assert_eq!(test::call_and_read_body(&app, request).await, "ok");
}

#[derive(Debug)]
struct Denied;

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("denied")
    }
}

impl ResponseError for Denied {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// An outer middleware may render the error's response more than once (a logger, then
/// actix-web), and look for its own error type: both work on an error that crossed the
/// session middleware after the session was read and changed.
#[actix_web::test]
async fn an_inner_error_stays_reachable_and_renders_the_same_every_time() {
    let app = test::init_service(
        App::new()
            .wrap_fn(|req, srv| {
                let session = Session::extract(req.request());
                drop(srv.call(req));
                async move {
                    session.await?.insert("seen", true)?;
                    Err::<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, _>(
                        Denied.into(),
                    )
                }
            })
            .wrap(SessionMiddleware::new(
                MemoryStore::new(),
                Keyring::new([[3u8; 32]]).unwrap(),
            ))
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    let Err(error) = test::try_call_service(&app, TestRequest::get().uri("/").to_request()).await
    else {
        panic!("the check answered no error");
    };
    let original = error
        .as_error::<ErrorWithSession>()
        .map(ErrorWithSession::inner)
        .expect("the error is passed on with the session's headers");
    assert!(
        original.as_error::<Denied>().is_some(),
        "the original error is lost"
    );
    assert_eq!(error.to_string(), "denied");
    for rendering in ["first", "second"] {
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{rendering}");
        let vary: Vec<_> = response.headers().get_all(VARY).collect();
        assert_eq!(vary, ["Cookie"], "{rendering}");
        assert_eq!(
            response.headers().get_all(SET_COOKIE).count(),
            1,
            "{rendering}"
        );
    }
}
