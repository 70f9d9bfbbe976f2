//! What the middleware allocates per request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::dev::{fn_service, Service, ServiceRequest, Transform};
use actix_web::test::TestRequest;
use actix_web::HttpResponse;
use session_actix::SessionMiddleware;
use session_core::{Keyring, MemoryStore};
use session_testkit::MAX_FUTURE_BYTES;

/// Every request boxes the middleware's future, which holds the session's write-back;
/// past `MAX_FUTURE_BYTES` glibc's allocator leaves its per-thread cache for its slow
/// path. Made, never polled.
#[actix_web::test]
async fn a_request_allocates_a_small_future() {
    let middleware =
        SessionMiddleware::builder(MemoryStore::new(), Keyring::new([[1u8; 32]]).unwrap())
            .build()
            .unwrap();
    let routes = fn_service(|request: ServiceRequest| async {
        Ok::<_, actix_web::Error>(request.into_response(HttpResponse::Ok().finish()))
    });
    let service = middleware.new_transform(routes).await.unwrap();
    let future = service.call(TestRequest::default().to_srv_request());
    let bytes = std::mem::size_of_val(&*future);
    assert!(
        bytes <= MAX_FUTURE_BYTES,
        "the middleware's future is {bytes} bytes, more than {MAX_FUTURE_BYTES}"
    );
}
