//! The example binaries as a user runs them: a real server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SECRET: &str = "a test secret that is long enough!!";

fn start(binary: &str, store_url: &str) -> Server {
    start_with(binary, store_url, 1)
}

fn start_with(binary: &str, store_url: &str, workers: usize) -> Server {
    let port = free_port();
    let child = Command::new(binary)
        .env("PORT", port.to_string())
        .env("WORKERS", workers.to_string())
        .env("SESSION_SECRET", SECRET)
        .env("SESSION_STORE_URL", store_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{binary} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

/// One HTTP/1.1 request; returns the whole response as text.
fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn get(port: u16, path: &str, cookie: &str) -> String {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

fn session_cookie(response: &str) -> String {
    response
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .expect("a Set-Cookie header")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn login_binary_serves_the_login_flow() {
    let dir = tempfile::Builder::new()
        // Private, as `FileStore` requires of a directory it did not create.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let server = start(
        env!("CARGO_BIN_EXE_login"),
        &format!("file://{}", dir.path().display()),
    );
    let home = get(server.port, "/", "");
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(home.contains("You are not logged in"));
    let body = "username=ferris";
    let login = http(
        server.port,
        &format!(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = session_cookie(&login);
    assert!(get(server.port, "/", &cookie).contains("Logged in as ferris"));
    // The session is a file named after its key in the store directory.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("session:"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
fn bench_binary_counts() {
    let server = start(env!("CARGO_BIN_EXE_bench"), "memory://");
    let new = get(server.port, "/new", "");
    assert!(new.ends_with("\r\n\r\n0"), "{new}");
    let cookie = session_cookie(&new);
    assert!(get(server.port, "/incr", &cookie).ends_with("\r\n\r\n1"));
    assert!(get(server.port, "/read", &cookie).ends_with("\r\n\r\n1"));
}

#[test]
fn bad_settings_are_one_line_errors_and_a_failure_status() {
    for (var, value, expected) in [
        (
            "SESSION_STORE_URL",
            "bogus://x",
            "unknown session store URL scheme",
        ),
        ("SESSION_SECRET", "too short", "at least 32 bytes"),
        ("PORT", "eighty", "PORT must be a port number"),
        (
            "SESSION_STORE_URL",
            "redis://127.0.0.1:1",
            "cannot reach the session store (Redis)",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_login"))
            .env("PORT", free_port().to_string())
            .env("SESSION_STORE_URL", "memory://")
            .env("SESSION_SECRET", "a test secret that is long enough!!")
            .env(var, value)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{var}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{stderr}"
        );
    }
}

#[test]
fn bench_binary_uses_redis() {
    let redis = session_redis::test_util::RedisServer::start().unwrap();
    let server = start(env!("CARGO_BIN_EXE_bench"), &redis.url());
    let cookie = session_cookie(&get(server.port, "/new", ""));
    assert!(get(server.port, "/incr", &cookie).ends_with("\r\n\r\n1"));
    assert!(get(server.port, "/read", &cookie).ends_with("\r\n\r\n1"));
}

#[test]
fn login_binary_uses_a_redis_cluster() {
    let url = service_url("SESSION_TEST_REDIS_CLUSTER_URL");
    let server = start(env!("CARGO_BIN_EXE_login"), &url);
    let body = "username=cluster";
    let login = http(
        server.port,
        &format!(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let cookie = session_cookie(&login);
    assert!(get(server.port, "/", &cookie).contains("Logged in as cluster"));
}

fn service_url(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `cargo xtask test examples`"))
}

/// The body of a response.
fn body(response: &str) -> &str {
    response.split("\r\n\r\n").nth(1).unwrap_or_default()
}

/// Sends GET `paths` with `cookie`, 16 at a time, as a page's parallel AJAX calls do.
fn in_parallel(port: u16, paths: &[String], cookie: &str) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let responses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let response = get(port, path, cookie);
                responses.lock().unwrap().push(response);
            });
        }
    });
    responses.into_inner().unwrap()
}

/// Concurrent requests of one session lose nothing, and a cookie that leads nowhere is
/// left alone, on the bench server in front of `url`.
fn overlapping_requests_lose_nothing(url: &str) {
    let server = start_with(env!("CARGO_BIN_EXE_bench"), url, 2);
    let cookie = session_cookie(&get(server.port, "/new", ""));
    let increments: Vec<String> = (0..64).map(|_| "/incr".to_owned()).collect();
    for response in in_parallel(server.port, &increments, &cookie) {
        assert!(response.starts_with("HTTP/1.1 200"), "{url}: {response}");
    }
    assert_eq!(
        body(&get(server.port, "/read", &cookie)),
        "64",
        "{url}: increments lost"
    );
    let puts: Vec<String> = (0..64).map(|i| format!("/put/key{i}")).collect();
    for response in in_parallel(server.port, &puts, &cookie) {
        assert!(response.starts_with("HTTP/1.1 200"), "{url}: {response}");
    }
    assert_eq!(
        body(&get(server.port, "/len", &cookie)),
        "65",
        "{url}: keys lost"
    );

    // A validly signed cookie whose session does not exist (ended, expired): answered
    // as a new session, and not removed, since it may be a newer login's by now.
    let keyring = session_core::Keyring::new([SECRET]).unwrap();
    let id = session_core::SessionId::generate(session_core::IdLength::default()).unwrap();
    let stale = format!("session={}", keyring.sign("session", &id));
    for path in ["/read", "/len"] {
        let response = get(server.port, path, &stale);
        assert!(response.starts_with("HTTP/1.1 200"), "{url}: {response}");
        assert!(
            !response.to_ascii_lowercase().contains("set-cookie"),
            "{url} {path}: {response}"
        );
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
    let redis = session_redis::test_util::RedisServer::start().unwrap();
    overlapping_requests_lose_nothing(&redis.url());
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
        let server = start(env!("CARGO_BIN_EXE_bench"), &url);
        let cookie = session_cookie(&get(server.port, "/new", ""));
        assert!(
            get(server.port, "/incr", &cookie).ends_with("\r\n\r\n1"),
            "{url}"
        );
        assert!(
            get(server.port, "/read", &cookie).ends_with("\r\n\r\n1"),
            "{url}"
        );
    }
}
