//! An example app binary (login, bench, ...) as a user runs it, on a free loopback port,
//! and an HTTP client that tells an answer from a hang, a dropped connection or a refused
//! one. A failure to start is the test's failure: these helpers panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::parse_response;
use crate::launcher::{dying_with_test, free_port, Scratch};

/// How long the client waits for an answer before it calls the request hung; far above
/// any bound the tests check, so that a slow answer is reported with its time.
const HANG: Duration = Duration::from_secs(30);

/// How long an app may take to listen.
const START: Duration = Duration::from_secs(30);

/// The signing secret the apps get.
pub const SECRET: &str = "a test secret that is long enough!!";

/// What one request got.
#[derive(Debug)]
pub struct Answer {
    /// The status, or why there is none (refused, dropped, hung, not HTTP).
    pub status: Result<u16, String>,
    /// The body.
    pub body: String,
    /// The session cookie it set (`session=...`), if any.
    pub cookie: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Answer {
    /// Whether the answer has this status.
    pub fn is(&self, status: u16) -> bool {
        self.status.as_ref().is_ok_and(|s| *s == status)
    }

    /// The cookie it set; fails the test if it set none.
    pub fn session_cookie(&self) -> String {
        self.cookie
            .clone()
            .unwrap_or_else(|| panic!("a Set-Cookie header in {self:?}"))
    }
}

/// How to start an app: its command, its workers and where it logs.
#[derive(Debug)]
pub struct AppBuilder {
    command: Command,
    workers: usize,
    log_dir: Option<PathBuf>,
}

impl AppBuilder {
    /// `workers` worker threads (one by default).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Logs to `app.log` in `dir` (by default in a temporary directory that goes with the
    /// app).
    pub fn log_dir(mut self, dir: &Path) -> Self {
        self.log_dir = Some(dir.to_owned());
        self
    }

    /// Starts the app in front of `store_url` and waits until it listens.
    pub fn start(mut self, store_url: &str) -> App {
        let port = free_port().expect("a free loopback port");
        let scratch = match &self.log_dir {
            Some(_) => None,
            None => Some(Scratch::temporary("app").expect("a scratch directory")),
        };
        let log_dir = self
            .log_dir
            .as_deref()
            .or(scratch.as_ref().map(Scratch::path))
            .expect("a log directory");
        let log = log_dir.join("app.log");
        let file = File::create(&log).expect("the app's log");
        self.command
            .env("PORT", port.to_string())
            .env("WORKERS", self.workers.to_string())
            .env("SESSION_SECRET", SECRET)
            .env("SESSION_STORE_URL", store_url)
            .env("RUST_LOG", "warn");
        let mut child = dying_with_test(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the app starts");
        let deadline = Instant::now() + START;
        // Listening is not yet answering: a first request right after the port opened has
        // been reset now and then, so the app counts as started once it answers HTTP (a
        // 404 for a path no app has, which touches no session and no store).
        loop {
            let probe = exchange(
                port,
                "GET /__testkit_ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            if probe
                .as_deref()
                .is_ok_and(|bytes| parse_response(bytes).is_some())
            {
                break;
            }
            // An app unable to listen exits, whether or not something else holds its port.
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the app exited ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "the app does not answer HTTP: {probe:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        App {
            child,
            port,
            log,
            _scratch: scratch,
        }
    }
}

/// An app on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct App {
    child: Child,
    port: u16,
    log: PathBuf,
    _scratch: Option<Scratch>,
}

impl App {
    /// `program` (such as `env!("CARGO_BIN_EXE_login")`) with one worker in front of
    /// `store_url`.
    pub fn start(program: impl AsRef<OsStr>, store_url: &str) -> Self {
        Self::builder(program).start(store_url)
    }

    /// An app to start from `program`.
    pub fn builder(program: impl AsRef<OsStr>) -> AppBuilder {
        Self::with_command(Command::new(program))
    }

    /// An app to start with `command`, such as one that enters a mount namespace first;
    /// it dies with the test.
    pub fn with_command(command: Command) -> AppBuilder {
        AppBuilder {
            command,
            workers: 1,
            log_dir: None,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `GET path`, with the session cookie if given.
    pub fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}Connection: close\r\n\r\n"
        ))
    }

    /// `POST path` of a form, `body` already encoded.
    pub fn post_form(&self, path: &str, body: &str) -> Answer {
        self.send(&format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// One request, sent as it is on a new connection that it asks to close.
    pub fn send(&self, request: &str) -> Answer {
        let started = Instant::now();
        let response = exchange(self.port, request);
        let elapsed = started.elapsed();
        let parsed = response.and_then(|bytes| {
            parse_response(&bytes).ok_or_else(|| {
                format!(
                    "not a complete HTTP response: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        });
        match parsed {
            Ok(response) => Answer {
                status: Ok(response.status),
                body: response.body,
                cookie: response.cookie,
                elapsed,
            },
            Err(error) => Answer {
                status: Err(error),
                body: String::new(),
                cookie: None,
                elapsed,
            },
        }
    }

    /// Fails if the app has exited or logged a panic.
    pub fn assert_healthy(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the app exited ({status}); see {}", self.log.display());
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            !log.contains("panicked"),
            "the app panicked; see {}",
            self.log.display()
        );
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the app logged, which goes with its scratch directory.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- the app's log ({}) ---\n{log}", self.log.display());
        }
    }
}

/// One request on a new connection; the whole response, or what went wrong.
fn exchange(port: u16, request: &str) -> Result<Vec<u8>, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect refused: {e}"))?;
    stream
        .set_read_timeout(Some(HANG))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("request not sent: {e}"))?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) if response.is_empty() => Err("connection closed without an answer".to_owned()),
        Ok(_) => Ok(response),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("no answer within {HANG:?} (hung)"))
        }
        Err(e) => Err(format!("connection dropped: {e}")),
    }
}
