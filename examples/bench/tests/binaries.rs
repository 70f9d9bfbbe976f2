//! The bench binary as a user runs it: a real server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use session_testkit::app::SECRET;
use session_testkit::{Answer, App, RedisServer};

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

#[test]
fn bench_binary_counts() {
    let app = App::start(BENCH, "memory://");
    let new = app.get("/new", None);
    assert!(new.is(200) && new.body == "0", "{new:?}");
    let cookie = new.session_cookie();
    assert_eq!(app.get("/incr", Some(&cookie)).body, "1");
    assert_eq!(app.get("/read", Some(&cookie)).body, "1");
}

#[test]
fn bench_binary_serves_metrics_with_metrics_1_only() {
    let mut command = std::process::Command::new(BENCH);
    command.env("METRICS", "1");
    let app = App::with_command(command).start("memory://");
    let cookie = app.get("/new", None).session_cookie();
    assert_eq!(app.get("/incr", Some(&cookie)).body, "1");
    let metrics = app.get("/metrics", None);
    assert!(metrics.is(200), "{metrics:?}");
    for line in [
        "# HELP session_created_total ",
        "session_created_total 1",
        "session_destroyed_total 0",
        r#"session_store_call_duration_seconds_count{backend="memory",operation="update"} 1"#,
    ] {
        assert!(
            metrics.body.lines().any(|l| l.starts_with(line)),
            "no `{line}` in:\n{}",
            metrics.body
        );
    }

    let plain = App::start(BENCH, "memory://");
    assert!(plain.get("/metrics", None).is(404));
}

#[test]
fn bench_binary_uses_redis() {
    let redis = RedisServer::start().unwrap();
    let app = App::start(BENCH, &redis.url());
    let cookie = app.get("/new", None).session_cookie();
    assert_eq!(app.get("/incr", Some(&cookie)).body, "1");
    assert_eq!(app.get("/read", Some(&cookie)).body, "1");
}

fn service_url(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `cargo xtask test examples`"))
}

/// Sends GET `paths` with `cookie`, 16 at a time, as a page's parallel AJAX calls do.
fn in_parallel(app: &App, paths: &[String], cookie: &str) -> Vec<Answer> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let responses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let response = app.get(path, Some(cookie));
                responses.lock().unwrap().push(response);
            });
        }
    });
    responses.into_inner().unwrap()
}

/// Concurrent requests of one session lose nothing, and a cookie that leads nowhere is
/// left alone, on the bench server in front of `url`.
fn overlapping_requests_lose_nothing(url: &str) {
    let app = App::builder(BENCH).workers(2).start(url);
    let cookie = app.get("/new", None).session_cookie();
    let increments: Vec<String> = (0..64).map(|_| "/incr".to_owned()).collect();
    for response in in_parallel(&app, &increments, &cookie) {
        assert!(response.is(200), "{url}: {response:?}");
    }
    assert_eq!(
        app.get("/read", Some(&cookie)).body,
        "64",
        "{url}: increments lost"
    );
    let puts: Vec<String> = (0..64).map(|i| format!("/put/key{i}")).collect();
    for response in in_parallel(&app, &puts, &cookie) {
        assert!(response.is(200), "{url}: {response:?}");
    }
    assert_eq!(
        app.get("/len", Some(&cookie)).body,
        "65",
        "{url}: keys lost"
    );

    // A validly signed cookie whose session does not exist (ended, expired): answered
    // as a new session, and not removed, since it may be a newer login's by now.
    let keyring = session_core::Keyring::new([SECRET]).unwrap();
    let id = session_core::SessionId::generate(session_core::IdLength::default()).unwrap();
    let stale = format!("session={}", keyring.sign("session", &id));
    for path in ["/read", "/len"] {
        let response = app.get(path, Some(&stale));
        assert!(response.is(200), "{url}: {response:?}");
        assert!(response.cookie.is_none(), "{url} {path}: {response:?}");
    }
}

#[test]
fn overlapping_requests_lose_nothing_in_memory_and_files() {
    let dir = tempfile::Builder::new()
        // Private, as `FileStore` requires of a directory it did not create.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    overlapping_requests_lose_nothing("memory://");
    overlapping_requests_lose_nothing(&format!("file://{}", dir.path().display()));
    let sqlite = format!("sqlite://{}", dir.path().join("sessions.db").display());
    overlapping_requests_lose_nothing(&sqlite);
}

#[test]
fn overlapping_requests_lose_nothing_on_redis() {
    let redis = RedisServer::start().unwrap();
    overlapping_requests_lose_nothing(&redis.url());
    // Valkey writes with `SET ... IFEQ` where Redis 7 runs the script.
    let valkey = RedisServer::start_valkey().unwrap();
    overlapping_requests_lose_nothing(&valkey.url());
    overlapping_requests_lose_nothing(&service_url("SESSION_TEST_REDIS_CLUSTER_URL"));
}

#[test]
fn overlapping_requests_lose_nothing_on_postgres_mysql_memcached_and_mongodb() {
    for var in [
        "SESSION_TEST_POSTGRES_URL",
        "SESSION_TEST_MYSQL_URL",
        "SESSION_TEST_MEMCACHED_URL",
        "SESSION_TEST_MONGODB_URL",
    ] {
        overlapping_requests_lose_nothing(&service_url(var));
    }
}

#[test]
fn bench_binary_uses_sqlite_postgres_mysql_memcached_and_mongodb() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let urls = [
        sqlite,
        service_url("SESSION_TEST_POSTGRES_URL"),
        service_url("SESSION_TEST_MYSQL_URL"),
        service_url("SESSION_TEST_MEMCACHED_URL"),
        service_url("SESSION_TEST_MONGODB_URL"),
    ];
    for url in urls {
        let app = App::start(BENCH, &url);
        let cookie = app.get("/new", None).session_cookie();
        assert_eq!(app.get("/incr", Some(&cookie)).body, "1", "{url}");
        assert_eq!(app.get("/read", Some(&cookie)).body, "1", "{url}");
    }
}
