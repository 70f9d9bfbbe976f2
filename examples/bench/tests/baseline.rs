//! The baseline binary on every store it does by hand: a session made by `/new` counts on
//! `/incr` and reads back on `/read`, and a cookie without a session reads as none.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use session_testkit::{App, RedisServer};

const BASELINE: &str = env!("CARGO_BIN_EXE_bench-baseline");

fn service_url(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `cargo xtask test examples`"))
}

/// `/new`, then two `/incr` and a `/read` with its cookie, on the baseline in front of
/// `url`; then a `/read` with a well-formed cookie that names no session.
fn counts(url: &str) {
    let app = App::start(BASELINE, url);
    let new = app.get("/new", None);
    assert!(new.is(200) && new.body == "0", "{url}: {new:?}");
    let cookie = new.session_cookie();
    assert!(cookie.starts_with("sid="), "{url}: {cookie}");
    assert_eq!(app.get("/incr", Some(&cookie)).body, "1", "{url}");
    assert_eq!(app.get("/incr", Some(&cookie)).body, "2", "{url}");
    assert_eq!(app.get("/read", Some(&cookie)).body, "2", "{url}");
    let unknown = format!("sid={}", "0".repeat(64));
    let read = app.get("/read", Some(&unknown));
    assert!(read.is(200) && read.body == "0", "{url}: {read:?}");
}

#[test]
fn baseline_counts_in_memory_files_sqlite_and_redis() {
    counts("memory://");
    let dir = tempfile::tempdir().unwrap();
    counts(&format!("file://{}", dir.path().join("files").display()));
    counts(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sessions.db").display()
    ));
    let redis = RedisServer::start().unwrap();
    counts(&redis.url());
}

#[test]
fn baseline_counts_on_services() {
    for var in [
        "SESSION_TEST_REDIS_CLUSTER_URL",
        "SESSION_TEST_POSTGRES_URL",
        "SESSION_TEST_MYSQL_URL",
        "SESSION_TEST_MEMCACHED_URL",
        "SESSION_TEST_MONGODB_URL",
    ] {
        counts(&service_url(var));
    }
}

#[test]
fn baseline_takes_the_store_timeout_off_the_url() {
    let url = service_url("SESSION_TEST_POSTGRES_URL");
    let separator = if url.contains('?') { '&' } else { '?' };
    counts(&format!("{url}{separator}store_timeout_ms=2000"));
}

#[test]
fn none_baseline_has_no_session() {
    let app = App::start(BASELINE, "none://");
    let new = app.get("/new", None);
    assert!(new.is(200) && new.body == "0", "{new:?}");
    assert!(new.cookie.is_none(), "{new:?}");
    assert_eq!(app.get("/incr", None).body, "1");
    assert_eq!(app.get("/read", None).body, "0");
}
