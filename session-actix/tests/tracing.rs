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
