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
    // Nothing in the store, names or contents, is the cookie's id: a copy of the
    // directory logs no one in.
    let id = cookie
        .split_once('=')
        .and_then(|(_, value)| value.split_once('.'))
        .map(|(id, _)| id.to_owned())
        .unwrap();
    let mut pending = vec![dir.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(&id),
            "{} is named after the id",
            path.display()
        );
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                "{} holds the id",
                path.display()
            );
        }
    }
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

/// `POST path` with the session cookie and no body, as a form with only a button sends it.
fn post(app: &App, path: &str, cookie: &str) -> session_testkit::Answer {
    app.send(&format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
}

/// Two logins of one user and one of another on the store at `url`: "log out everywhere
/// else" from the first logs the second out, and neither the first nor the other user.
fn devices_page_ends_the_other_session(url: &str) {
    let app = App::start(LOGIN, url);
    // A user of its own per run, as the servers are shared.
    let user = format!(
        "ada-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let login = |name: &str| {
        let answer = app.post_form("/login", &format!("username={name}"));
        assert!(answer.is(303), "{url}: {answer:?}");
        answer.session_cookie()
    };
    let first = login(&user);
    let second = login(&user);
    let other = login(&format!("{user}-other"));
    let page = app.get("/sessions", Some(&first));
    assert!(page.is(200), "{url}: {page:?}");
    // The header row and one row per session.
    assert_eq!(page.body.matches("<tr").count(), 3, "{url}: {}", page.body);
    assert_eq!(page.body.matches("This device").count(), 1, "{url}");
    let revoked = post(&app, "/sessions/revoke-others", &first);
    assert!(revoked.is(303), "{url}: {revoked:?}");
    let logged_in = |cookie: &str| app.get("/", Some(cookie)).body.contains("Logged in as");
    assert!(!logged_in(&second), "{url}: the other session survived");
    assert!(logged_in(&first), "{url}: the current session was ended");
    assert!(logged_in(&other), "{url}: another user was logged out");
    let page = app.get("/sessions", Some(&first));
    assert_eq!(page.body.matches("<tr").count(), 2, "{url}: {}", page.body);
}

#[test]
fn the_devices_page_works_on_every_backend() {
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let mut urls = vec![
        format!("file://{}", dir.path().join("files").display()),
        format!("sqlite://{}", dir.path().join("sessions.db").display()),
    ];
    for var in [
        "SESSION_TEST_REDIS_URL",
        "SESSION_TEST_REDIS_CLUSTER_URL",
        "SESSION_TEST_MEMCACHED_URL",
        "SESSION_TEST_MONGODB_URL",
        "SESSION_TEST_POSTGRES_URL",
        "SESSION_TEST_MYSQL_URL",
    ] {
        urls.push(service_url(var));
    }
    for url in &urls {
        devices_page_ends_the_other_session(url);
    }
}
