//! A store that really fails (a `FileStore` whose directory was replaced by a plain file)
//! is counted in `session_store_errors_total` by backend and operation, and its calls are
//! still timed; the session id shows in no label.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;

use actix_web::http::header::SET_COOKIE;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::metrics::{STORE_CALL_DURATION, STORE_ERRORS};
use session_core::Keyring;
use session_fs::FileStore;

async fn incr(session: Session) -> Result<String, SessionError> {
    let n = session.get::<i64>("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

#[actix_web::test]
async fn store_errors_are_counted_by_backend_and_operation() {
    // The test's requests all run on this thread, where the recorder is installed.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("sessions");
    let store = FileStore::open(&dir).unwrap();
    let middleware = SessionMiddleware::new(store, Keyring::new([[3u8; 32]]).unwrap());
    let app = test::init_service(
        App::new()
            .wrap(middleware)
            .route("/incr", web::get().to(incr)),
    )
    .await;
    let first = test::call_service(&app, TestRequest::get().uri("/incr").to_request()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let header = first.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = header.split(';').next().unwrap().to_owned();
    snapshotter.snapshot();

    std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let with_cookie = TestRequest::get()
        .uri("/incr")
        .insert_header(("Cookie", cookie.as_str()));
    let load_fails = test::call_service(&app, with_cookie.to_request()).await;
    assert_eq!(load_fails.status(), StatusCode::SERVICE_UNAVAILABLE);
    let create_fails = test::call_service(&app, TestRequest::get().uri("/incr").to_request()).await;
    assert_eq!(create_fails.status(), StatusCode::SERVICE_UNAVAILABLE);

    let mut errors = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect::<Vec<_>>();
        match (key.name(), value) {
            (STORE_ERRORS, DebugValue::Counter(n)) if n > 0 => {
                errors.insert(labels, n);
            }
            (STORE_CALL_DURATION, DebugValue::Histogram(values)) if !values.is_empty() => {
                samples.insert(labels, values.len());
            }
            _ => {}
        }
    }
    // Exactly these labels: nothing from the request.
    let labels = |operation: &str| {
        vec![
            ("backend".to_owned(), "file".to_owned()),
            ("operation".to_owned(), operation.to_owned()),
        ]
    };
    assert_eq!(
        errors,
        BTreeMap::from([(labels("load"), 1), (labels("create"), 1)])
    );
    assert_eq!(
        samples,
        BTreeMap::from([(labels("load"), 1), (labels("create"), 1)])
    );
}
