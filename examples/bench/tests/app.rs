//! The bench app, driven through actix-web's test service on a real FileStore.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use session_actix::SessionMiddleware;
use session_core::Keyring;
use session_fs::FileStore;

/// GET `uri`, with `cookie` if given: the body, and the `name=value` of the cookie set.
async fn get<S, B>(app: &S, uri: &str, cookie: Option<&str>) -> (String, Option<String>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = TestRequest::get().uri(uri);
    if let Some(cookie) = cookie {
        request = request.insert_header(("Cookie", cookie));
    }
    let response = test::call_service(app, request.to_request()).await;
    let set_cookie = response.headers().get(SET_COOKIE).map(|value| {
        let value = value.to_str().unwrap();
        value.split(';').next().unwrap().to_owned()
    });
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    (body, set_cookie)
}

#[actix_web::test]
async fn bench_routes_read_increment_and_create() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path().join("sessions")).unwrap());
    let keyring = Keyring::new([b"an example secret of thirty-two bytes".as_slice()]).unwrap();
    let middleware = SessionMiddleware::builder(store, keyring).build().unwrap();
    let app = test::init_service(App::new().wrap(middleware).configure(bench::app::routes)).await;
    let (body, set_cookie) = get(&app, "/read", None).await;
    assert_eq!((body.as_str(), set_cookie.is_none()), ("0", true));
    let (body, set_cookie) = get(&app, "/new", None).await;
    assert_eq!(body, "0");
    let cookie = set_cookie.unwrap();
    for expected in ["1", "2"] {
        assert_eq!(get(&app, "/incr", Some(&cookie)).await.0, expected);
    }
    let (body, set_cookie) = get(&app, "/read", Some(&cookie)).await;
    assert_eq!(body, "2");
    assert!(set_cookie.is_none(), "/read modified the session");
}

#[actix_web::test]
async fn metrics_are_served_in_prometheus_format_when_enabled() {
    // The recorder `install_metrics` would install for the process, here for this thread,
    // where the test's requests run.
    let recorder = bench::app::prometheus_builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    session_core::describe_metrics();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path().join("sessions")).unwrap());
    let keyring = Keyring::new([b"an example secret of thirty-two bytes".as_slice()]).unwrap();
    let middleware = SessionMiddleware::builder(store, keyring).build().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(actix_web::web::Data::new(handle))
            .wrap(middleware)
            .configure(bench::app::routes),
    )
    .await;
    let cookie = get(&app, "/new", None).await.1.unwrap();
    assert_eq!(get(&app, "/incr", Some(&cookie)).await.0, "1");
    assert_eq!(get(&app, "/logout", Some(&cookie)).await.0, "bye");

    let response = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").unwrap();
    assert!(content_type.to_str().unwrap().starts_with("text/plain"));
    assert!(response.headers().get(SET_COOKIE).is_none());
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    for line in [
        "# TYPE session_created_total counter",
        "session_created_total 1",
        "session_destroyed_total 1",
        "# HELP session_store_call_duration_seconds Time a session store call took",
        "# TYPE session_store_call_duration_seconds histogram",
        r#"session_store_call_duration_seconds_count{backend="file",operation="create"} 1"#,
        r#"session_store_call_duration_seconds_count{backend="file",operation="load"} 2"#,
        r#"session_store_call_duration_seconds_count{backend="file",operation="update"} 1"#,
        r#"session_store_call_duration_seconds_count{backend="file",operation="delete_if_unchanged"} 1"#,
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(line)),
            "no `{line}` in:\n{body}"
        );
    }
    assert!(!body.contains("session_store_errors_total{"), "{body}");
}

#[actix_web::test]
async fn metrics_are_off_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path().join("sessions")).unwrap());
    let keyring = Keyring::new([b"an example secret of thirty-two bytes".as_slice()]).unwrap();
    let middleware = SessionMiddleware::builder(store, keyring).build().unwrap();
    let app = test::init_service(App::new().wrap(middleware).configure(bench::app::routes)).await;
    let response = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), 404);
}
