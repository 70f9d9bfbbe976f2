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
