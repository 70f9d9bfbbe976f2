//! `Session::remove_as` of a value that is not a `T` refuses and changes nothing, as
//! `take_value` does: the handler may answer the error and keep going.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{Keyring, MemoryStore};

#[actix_web::test]
async fn remove_as_the_wrong_type_keeps_the_value() {
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                MemoryStore::new(),
                Keyring::new([[6u8; 32]]).unwrap(),
            ))
            .route(
                "/set",
                web::get().to(|s: Session| async move {
                    s.insert("name", "ada")?;
                    Ok::<_, SessionError>("set")
                }),
            )
            .route(
                "/take-number",
                web::get().to(|s: Session| async move {
                    // A 400 for the client's bad state, not a 500: the session is kept.
                    match s.remove_as::<u32>("name") {
                        Ok(_) => "taken",
                        Err(_) => "not a number",
                    }
                }),
            )
            .route(
                "/read",
                web::get().to(|s: Session| async move {
                    Ok::<_, SessionError>(s.get::<String>("name")?.unwrap_or_default())
                }),
            ),
    )
    .await;
    let set = test::call_service(&app, TestRequest::get().uri("/set").to_request()).await;
    let header = set.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = header.split(';').next().unwrap().to_owned();
    let request = |path: &str| {
        TestRequest::get()
            .uri(path)
            .insert_header(("Cookie", cookie.as_str()))
            .to_request()
    };
    let body = test::call_and_read_body(&app, request("/take-number")).await;
    assert_eq!(body, "not a number");
    let body = test::call_and_read_body(&app, request("/read")).await;
    assert_eq!(body, "ada", "the refused remove_as removed the value");
}
