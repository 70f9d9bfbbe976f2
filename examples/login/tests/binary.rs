//! The login binary as a user runs it: a real server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use session_testkit::launcher::free_port;
use session_testkit::App;

const LOGIN: &str = env!("CARGO_BIN_EXE_login");

#[test]
fn login_binary_serves_the_login_flow() {
    let dir = tempfile::Builder::new()
        // Private, as `FileStore` requires of a directory it did not create.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let app = App::start(LOGIN, &format!("file://{}", dir.path().display()));
    let home = app.get("/", None);
    assert!(home.is(200), "{home:?}");
    assert!(home.body.contains("You are not logged in"));
    let login = app.post_form("/login", "username=ferris");
    assert!(login.is(303), "{login:?}");
    let cookie = login.session_cookie();
    assert!(app
        .get("/", Some(&cookie))
        .body
        .contains("Logged in as ferris"));
    // The session is a file named after its key in the store directory.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("session:"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
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
        let output = Command::new(LOGIN)
            .env("PORT", free_port().unwrap().to_string())
            .env("SESSION_STORE_URL", "memory://")
            .env("SESSION_SECRET", session_testkit::app::SECRET)
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
fn login_binary_uses_a_redis_cluster() {
    let url = service_url("SESSION_TEST_REDIS_CLUSTER_URL");
    let app = App::start(LOGIN, &url);
    let cookie = app.post_form("/login", "username=cluster").session_cookie();
    assert!(app
        .get("/", Some(&cookie))
        .body
        .contains("Logged in as cluster"));
}

fn service_url(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `cargo xtask test examples`"))
}
