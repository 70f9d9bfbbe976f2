//! A handler that takes the session twice (as an application's own extractor built on it
//! would, beside the handler's) reads the store once: its extractors are polled together,
//! and the second waits for the first one's read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::Arc;

use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::Keyring;
use session_fs::{FileStore, IoThread};
use session_testkit::CountingStore;

#[actix_web::test]
async fn two_session_extractors_load_once() {
    // A store whose calls really wait, so that both extractors are polled before either
    // load has finished.
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let store = Arc::new(CountingStore::new(Arc::new(
        FileStore::builder(dir.path())
            .io_thread(IoThread::BlockingPool)
            .open()
            .unwrap(),
    )));
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                Arc::clone(&store),
                Keyring::new([[8u8; 32]]).unwrap(),
            ))
            .route(
                "/set",
                web::get().to(|s: Session| async move {
                    s.insert("n", 1)?;
                    Ok::<_, SessionError>("set")
                }),
            )
            .route(
                "/twice",
                web::get().to(|a: Session, b: Session| async move {
                    Ok::<_, SessionError>(format!(
                        "{}{}",
                        a.get::<u32>("n")?.unwrap_or(0),
                        b.get::<u32>("n")?.unwrap_or(0)
                    ))
                }),
            ),
    )
    .await;
    let set = test::call_service(&app, TestRequest::get().uri("/set").to_request()).await;
    let header = set.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = header.split(';').next().unwrap().to_owned();
    store.reset();
    let request = TestRequest::get()
        .uri("/twice")
        .insert_header(("Cookie", cookie.as_str()))
        .to_request();
    assert_eq!(test::call_and_read_body(&app, request).await, "11");
    assert_eq!(store.total(), 1, "the store was read more than once");
}
