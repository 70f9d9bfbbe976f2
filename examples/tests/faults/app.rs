//! The `bench` app as a user runs it, and an HTTP client that tells an answer from a hang,
//! a dropped connection or a refused one.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::servers::dying_with_test;

/// How long the client waits for an answer before it calls the request hung; far above
/// any bound the tests check, so that a slow answer is reported with its time.
const HANG: Duration = Duration::from_secs(30);

const SECRET: &str = "a test secret that is long enough!!";

/// What one request got.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status, or why there is none (refused, dropped, hung).
    pub(crate) status: Result<u16, String>,
    pub(crate) body: String,
    /// The session cookie it set (`session=...`), if any.
    pub(crate) cookie: Option<String>,
    pub(crate) elapsed: Duration,
}

impl Answer {
    pub(crate) fn is(&self, status: u16) -> bool {
        self.status.as_ref().is_ok_and(|s| *s == status)
    }
}

/// The bench app on a free loopback port, killed when dropped.
pub(crate) struct App {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl App {
    /// Starts the bench app on `store_url` with two workers, logging to `app.log` in
    /// `log_dir`, and waits until it listens.
    pub(crate) fn start(store_url: &str, log_dir: &Path) -> Self {
        Self::start_with(
            Command::new(env!("CARGO_BIN_EXE_bench")),
            store_url,
            log_dir,
        )
    }

    /// [`Self::start`] with the command that runs the bench app, such as one that enters
    /// a mount namespace first; it dies with the test.
    pub(crate) fn start_with(mut bench: Command, store_url: &str, log_dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free loopback port");
        let log = log_dir.join("app.log");
        let file = File::create(&log).expect("the app's log");
        bench
            .env("PORT", port.to_string())
            .env("WORKERS", "2")
            .env("SESSION_SECRET", SECRET)
            .env("SESSION_STORE_URL", store_url)
            .env("RUST_LOG", "warn");
        let mut child = dying_with_test(&bench)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the bench app starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the bench app exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "the bench app did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        Self { child, port, log }
    }

    /// `GET path`, with the session cookie if given.
    pub(crate) fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let started = Instant::now();
        let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}Connection: close\r\n\r\n");
        let response = exchange(self.port, &request);
        let elapsed = started.elapsed();
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return Answer {
                    status: Err(error),
                    body: String::new(),
                    cookie: None,
                    elapsed,
                }
            }
        };
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP response: {response:?}"));
        let cookie = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        });
        Answer {
            status,
            body: body.to_owned(),
            cookie,
            elapsed,
        }
    }

    /// Fails if the app has exited or logged a panic.
    pub(crate) fn assert_healthy(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the bench app exited ({status}); see {}",
                self.log.display()
            );
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            !log.contains("panicked"),
            "the bench app panicked; see {}",
            self.log.display()
        );
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a new connection; the whole response, or what went wrong.
fn exchange(port: u16, request: &str) -> Result<String, String> {
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
        Ok(_) => Ok(String::from_utf8_lossy(&response).into_owned()),
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
