//! Every store call runs in a `session_store` span with the operation, backend, outcome
//! and duration, and nothing logged ever contains a session id or its cookie.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{Keyring, MemoryStore};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[actix_web::test]
async fn store_calls_are_traced_without_ids() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let middleware = SessionMiddleware::new(MemoryStore::new(), Keyring::new([[5u8; 32]]).unwrap());
    let app = test::init_service(App::new().wrap(middleware).route(
        "/incr",
        web::get().to(|s: Session| async move {
            let n = s.get::<u32>("n")?.unwrap_or(0) + 1;
            s.insert("n", n)?;
            Ok::<_, SessionError>(n.to_string())
        }),
    ))
    .await;
    let first = test::call_service(&app, TestRequest::get().uri("/incr").to_request()).await;
    let cookie = first
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let request = TestRequest::get()
        .uri("/incr")
        .insert_header(("Cookie", pair.as_str()));
    test::call_service(&app, request.to_request()).await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for operation in ["create", "load", "update"] {
        let line = log
            .lines()
            .find(|l| {
                l.contains("session_store") && l.contains(&format!("operation=\"{operation}\""))
            })
            .unwrap_or_else(|| panic!("no span for {operation} in:\n{log}"));
        assert!(line.contains("backend=\"memory\""), "{line}");
        assert!(line.contains("outcome=\"ok\""), "{line}");
        assert!(line.contains("duration_us="), "{line}");
    }
    let value = pair.split_once('=').unwrap().1;
    let (id, signature) = value.split_once('.').unwrap();
    assert!(!log.contains(id), "a session id was logged:\n{log}");
    assert!(
        !log.contains(signature),
        "a cookie signature was logged:\n{log}"
    );
}

/// Everything the middleware and the manager can log at any level, through a login, an
/// update, a logout, a stale cookie and an undecodable record, holds no session id, no
/// cookie, no secret and no session value.
#[actix_web::test]
async fn nothing_secret_reaches_a_log_line() {
    const SECRET: &str = "keyring-secret-that-must-never-be-logged-0001";
    const VALUE: &str = "session-value-that-must-never-be-logged";
    const STORED: &str = "stored-bytes-that-must-never-be-logged";
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = MemoryStore::new();
    let keyring = Keyring::new([SECRET]).unwrap();
    let middleware = SessionMiddleware::new(store.clone(), keyring.clone());
    let app = test::init_service(
        App::new()
            .wrap(middleware)
            .route(
                "/login",
                web::get().to(|s: Session| async move {
                    s.regenerate()?;
                    s.insert("user", VALUE)?;
                    Ok::<_, SessionError>("in")
                }),
            )
            .route(
                "/incr",
                web::get().to(|s: Session| async move {
                    s.update("visits", |n: Option<u32>| n.unwrap_or(0) + 1)?;
                    Ok::<_, SessionError>("counted")
                }),
            )
            .route(
                "/typed",
                // A key read as the wrong type, its error logged as an application or
                // actix's Logger would: the chain and the Debug form.
                web::get().to(|s: Session| async move {
                    let read = s.get::<u32>("user");
                    if let Err(error) = &read {
                        tracing::error!(
                            error = error as &(dyn std::error::Error + 'static),
                            debug = ?error,
                            "handler failed"
                        );
                    }
                    read.map(|n| n.unwrap_or(0).to_string())
                }),
            )
            .route(
                "/logout",
                web::get().to(|s: Session| async move {
                    s.destroy()?;
                    Ok::<_, SessionError>("out")
                }),
            ),
    )
    .await;
    let get = |uri: &'static str, cookie: Option<String>| {
        let mut request = TestRequest::get().uri(uri);
        if let Some(cookie) = cookie {
            request = request.insert_header(("Cookie", cookie));
        }
        request.to_request()
    };
    let pair_of = |headers: &actix_web::http::header::HeaderMap| {
        let header = headers.get(SET_COOKIE).unwrap().to_str().unwrap();
        header.split(';').next().unwrap().to_owned()
    };

    let mut cookies = Vec::new();
    let login = test::call_service(&app, get("/login", None)).await;
    let cookie = pair_of(login.headers());
    cookies.push(cookie.clone());
    let incr = test::call_service(&app, get("/incr", Some(cookie.clone()))).await;
    assert!(incr.status().is_success());
    let relogin = test::call_service(&app, get("/login", Some(cookie.clone()))).await;
    let cookie = pair_of(relogin.headers());
    cookies.push(cookie.clone());
    // The first cookie now leads nowhere.
    test::call_service(&app, get("/incr", Some(cookies[0].clone()))).await;
    let typed = test::call_service(&app, get("/typed", Some(cookie.clone()))).await;
    assert_eq!(typed.status(), 500);
    test::call_service(&app, get("/logout", Some(cookie.clone()))).await;

    // A record the codec cannot read, whose decoder message would quote it.
    let id = session_core::SessionId::generate(session_core::IdLength::default()).unwrap();
    let key = session_core::store::StoreKey::new(session_core::store::DEFAULT_KEY_PREFIX, &id);
    let garbage = format!(r#"{{"v":1,"created":"{STORED}","permanent":true,"data":{{}}}}"#);
    let in_an_hour = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    session_core::store::Store::create(&store, &key, garbage.as_bytes(), in_an_hour)
        .await
        .unwrap();
    let value = keyring.sign(session_core::DEFAULT_COOKIE_NAME, &id);
    let garbled = format!("{}={value}", session_core::DEFAULT_COOKIE_NAME);
    cookies.push(garbled.clone());
    test::call_service(&app, get("/incr", Some(garbled))).await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("undecodable session record"),
        "the undecodable record was not reported:\n{log}"
    );
    assert!(log.contains("handler failed"), "{log}");
    for forbidden in [SECRET, VALUE, STORED] {
        assert!(!log.contains(forbidden), "`{forbidden}` was logged:\n{log}");
    }
    for cookie in &cookies {
        let value = cookie.split_once('=').unwrap().1;
        let (id, signature) = value.split_once('.').unwrap();
        assert!(!log.contains(id), "a session id was logged:\n{log}");
        assert!(!log.contains(signature), "a signature was logged:\n{log}");
    }
}
