//! The `Cookie` header as browsers really send it: the session cookie is found however
//! malformed the other cookies sharing the header are.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::http::header::{HeaderValue, COOKIE, SET_COOKIE};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{Keyring, MemoryStore};

#[actix_web::test]
async fn a_non_utf8_byte_in_another_cookie_does_not_hide_the_session() {
    let middleware =
        SessionMiddleware::builder(MemoryStore::new(), Keyring::new([[5u8; 32]]).unwrap())
            .build()
            .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(middleware)
            .route(
                "/login",
                web::get().to(|s: Session| async move {
                    s.insert("user", "ada")?;
                    Ok::<_, SessionError>("welcome")
                }),
            )
            .route(
                "/whoami",
                web::get().to(|s: Session| async move {
                    Ok::<_, SessionError>(s.get::<String>("user")?.unwrap_or_default())
                }),
            ),
    )
    .await;

    let login = test::call_service(&app, TestRequest::get().uri("/login").to_request()).await;
    let set_cookie = login.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let pair = set_cookie.split(';').next().unwrap();
    assert!(pair.starts_with("session="));

    // A header value may carry obs-text bytes (0x80 to 0xff), which are not UTF-8 alone.
    for (case, header) in [
        [b"a=\xff; ".as_slice(), pair.as_bytes()].concat(),
        [pair.as_bytes(), b"; b=\xc3\x28".as_slice()].concat(),
        [b"\xfe\xff=x; ".as_slice(), pair.as_bytes(), b"; c=\x80"].concat(),
    ]
    .into_iter()
    .enumerate()
    {
        let value = HeaderValue::from_bytes(&header).unwrap();
        assert!(value.to_str().is_err(), "case {case} is valid UTF-8");
        let request = TestRequest::get()
            .uri("/whoami")
            .insert_header((COOKIE, value))
            .to_request();
        let body = test::call_and_read_body(&app, request).await;
        assert_eq!(body, "ada", "case {case}");
    }
}
