//! What a user sees in Redis, and what happens when Redis goes away and comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::SET_COOKIE;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{Store, StoreError, StoreKey};
use session_core::{Config, IdLength, Keyring, SessionId};
use session_redis::RedisStore;
use session_testkit::RedisServer;

fn keyring() -> Keyring {
    Keyring::new([[9u8; 32]]).unwrap()
}

async fn query<T: redis::FromRedisValue>(url: &str, command: &redis::Cmd) -> T {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

#[tokio::test]
async fn one_key_per_session_with_the_prefix_and_a_ttl_of_the_lifetime() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let lifetime = Duration::from_secs(3600);
    let config = Config::builder(keyring())
        .lifetime(lifetime)
        .build()
        .unwrap();
    let sessions = SessionManager::new(store, config);
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("uname", "ferris").unwrap();
    let CookieUpdate::Set(cookie) = sessions.save(state).await.unwrap() else {
        panic!("no cookie")
    };
    let pair = cookie.split(';').next().unwrap();
    let RequestCookie::Valid(verified) = sessions.verify([pair]) else {
        panic!("the cookie does not verify")
    };
    let id = verified.into_id();

    // The key holds a digest of the id, not the id.
    let keys: Vec<String> = query(&server.url(), redis::cmd("KEYS").arg("session:*")).await;
    assert_eq!(keys, [StoreKey::new("session:", &id).as_str()]);
    assert!(!keys[0].contains(id.as_str()));
    let ttl: i64 = query(&server.url(), redis::cmd("PTTL").arg(&keys[0])).await;
    let ttl = Duration::from_millis(ttl as u64);
    assert!(lifetime - ttl < Duration::from_secs(5), "TTL {ttl:?}");
    let stored: String = query(&server.url(), redis::cmd("GET").arg(&keys[0])).await;
    // The revision, 16 hex digits, then the record.
    assert!(
        stored.starts_with(r#"0000000000000001{"v":1,"#) && stored.contains(r#""uname":"ferris""#),
        "{stored}"
    );
}

#[tokio::test]
async fn a_wrong_address_fails_at_connect() {
    let started = Instant::now();
    let error = RedisStore::connect("redis://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, session_core::store::StoreError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn an_outage_answers_503_quickly_and_the_store_recovers_by_itself() {
    let mut server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(500);
    let store = RedisStore::builder(server.url())
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    assert_eq!(store.backend(), "redis");
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store, keyring()))
            .route(
                "/incr",
                web::get().to(|s: Session| async move {
                    let n = s.get::<u32>("n")?.unwrap_or(0) + 1;
                    s.insert("n", n)?;
                    Ok::<_, SessionError>(n.to_string())
                }),
            ),
    )
    .await;
    let first = test::call_service(&app, TestRequest::get().uri("/incr").to_request()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = first.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = || {
        TestRequest::get()
            .uri("/incr")
            .insert_header(("Cookie", cookie.as_str()))
    };

    server.stop().unwrap();
    for request in [with_cookie(), TestRequest::get().uri("/incr")] {
        let started = Instant::now();
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < timeout * 3,
            "took {:?}",
            started.elapsed()
        );
    }

    server.restart().unwrap();
    // The restarted server is empty, so the old session is gone: a fresh one starts at 1.
    let response = test::call_service(&app, with_cookie().to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "1");
}

/// A store on `server` with `timeout`, and the key of a session stored as `kept` that
/// expires at the time returned.
async fn one_session(
    server: &RedisServer,
    timeout: Duration,
) -> (RedisStore, StoreKey, SystemTime) {
    let store = RedisStore::builder(server.url())
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    let key = StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    );
    let expiry = SystemTime::now() + Duration::from_secs(3600);
    store.create(&key, b"kept", expiry).await.unwrap();
    (store, key, expiry)
}

#[tokio::test]
async fn a_hung_server_fails_waiting_commands_after_the_timeout_and_the_store_recovers() {
    let server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(300);
    let (store, key, expiry) = one_session(&server, timeout).await;
    let revision = store.load(&key).await.unwrap().unwrap().revision();

    // Frozen, Redis keeps its connections open and answers nothing: only the watchdog can
    // end the commands waiting on it.
    server.freeze().unwrap();
    let started = Instant::now();
    let both = async {
        tokio::join!(
            store.load(&key),
            store.update(&key, b"late", expiry, revision)
        )
    };
    // Bounded, so that a broken watchdog fails the test instead of hanging it.
    let (first, second) = tokio::time::timeout(timeout * 10, both)
        .await
        .expect("commands on a hung connection never ended");
    let elapsed = started.elapsed();
    server.thaw().unwrap();
    for result in [first.map(drop), second.map(drop)] {
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "{result:?}"
        );
    }
    assert!(
        elapsed >= timeout,
        "failed after {elapsed:?}, before the timeout"
    );
    assert!(elapsed < timeout * 3, "failed only after {elapsed:?}");

    // A new connection. The update had reached Redis's socket before the freeze, so, as
    // with any timeout, it may have run after the thaw: either value, never a torn one.
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert!(
        [&b"kept"[..], b"late"].contains(&loaded.value()),
        "{:?}",
        loaded.value()
    );
}

/// Callers that give up before the store's timeout (a request timeout shorter than the
/// store's) must not keep a hung connection looking alive: a caller that waits still gets
/// its failure in time, and the store recovers.
#[tokio::test]
async fn callers_that_give_up_early_do_not_hide_a_hung_server() {
    let server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(300);
    let (store, key, _) = one_session(&server, timeout).await;

    server.freeze().unwrap();
    // Callers that give up long before the store's timeout, one after another.
    let impatient = {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_millis(60), store.load(&key)).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    // Bounded, so that a broken watchdog fails the test instead of hanging it.
    let patient = tokio::time::timeout(timeout * 10, store.load(&key))
        .await
        .expect("a waiting command never ended while other callers gave up");
    let elapsed = started.elapsed();
    impatient.abort();
    server.thaw().unwrap();
    assert!(
        matches!(patient, Err(StoreError::Unavailable { .. })),
        "{patient:?}"
    );
    assert!(elapsed < timeout * 3, "failed only after {elapsed:?}");
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.value(), b"kept");
}

/// A command given up on earlier does not shorten the timeout of later ones: a Redis that
/// stalls for a third of the timeout while a load waits fails nothing.
#[tokio::test]
async fn a_short_stall_after_a_command_given_up_on_fails_nothing() {
    let server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(300);
    let (store, key, _) = one_session(&server, timeout).await;
    for round in 0..8u64 {
        store.load(&key).await.unwrap();
        server.freeze().unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(20), store.load(&key)).await;
        assert!(gave_up.is_err(), "a frozen Redis answered");
        server.thaw().unwrap();
        store.load(&key).await.unwrap();
        // Quiet spells of different lengths, so the stall meets the ticks at every phase.
        tokio::time::sleep(Duration::from_millis(200 + 35 * round)).await;
        server.freeze().unwrap();
        let load = {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.load(&key).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.thaw().unwrap();
        let loaded = load.await.unwrap();
        assert!(loaded.is_ok(), "round {round}: {loaded:?}");
    }
}

/// A process that stops running for a while (a paused VM, a stopped container, a long
/// stall of its CPU) finds the answers to its commands waiting in the socket when it runs
/// again: the watchdog must not take the pause for a hung server.
#[tokio::test]
async fn a_paused_process_does_not_take_its_answers_for_a_hang() {
    let server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(200);
    let (store, key, _) = one_session(&server, timeout).await;
    for _ in 0..5 {
        let loads: Vec<_> = (0..32)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.load(&key).await })
            })
            .collect();
        // The loads send their commands; then the thread stops for several timeouts, as a
        // paused process would, while Redis answers.
        tokio::task::yield_now().await;
        std::thread::sleep(timeout * 4);
        for load in loads {
            let loaded = load.await.unwrap();
            assert!(
                matches!(&loaded, Ok(Some(record)) if record.value() == b"kept"),
                "a command failed after the pause: {loaded:?}"
            );
        }
    }
}
