//! The bench routes cost the Redis commands a session needs and no more: `/read` one
//! (`GETEX`, which also refreshes expiry), `/incr` two (`GETEX`, and the `EVALSHA` of the
//! conditional write), `/new` one (`SET NX`). Counted with `INFO commandstats` on a
//! private Redis nobody else uses, as the client sends them (a script's own calls are
//! counted apart).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use session_actix::SessionMiddleware;
use session_core::Keyring;
use session_redis::RedisStore;
use session_testkit::RedisServer;

#[actix_web::test]
async fn bench_routes_cost_one_two_and_one_command() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let keyring = Keyring::new([[3u8; 32]]).unwrap();
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store, keyring))
            .configure(bench::app::routes),
    )
    .await;
    // Opens this thread's connection, whose handshake is not a session's cost.
    let warm_up = test::call_service(&app, TestRequest::get().uri("/new").to_request()).await;
    let cookie = warm_up.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    // Loads the conditional-write script into Redis's cache, once per server: the first
    // EVALSHA answers NOSCRIPT and is sent again as EVAL.
    let request = TestRequest::get()
        .uri("/incr")
        .insert_header(("Cookie", cookie.as_str()));
    let warm_up = test::call_service(&app, request.to_request()).await;
    assert!(warm_up.status().is_success());

    for (route, with_cookie, expected) in
        [("/read", true, 1), ("/incr", true, 2), ("/new", false, 1)]
    {
        for _ in 0..3 {
            let before = server.client_commands().unwrap();
            let mut request = TestRequest::get().uri(route);
            if with_cookie {
                request = request.insert_header(("Cookie", cookie.as_str()));
            }
            let response = test::call_service(&app, request.to_request()).await;
            assert!(
                response.status().is_success(),
                "{route}: {}",
                response.status()
            );
            let commands = server.client_commands().unwrap() - before;
            assert_eq!(commands, expected, "{route} sent {commands} commands");
        }
    }
}
