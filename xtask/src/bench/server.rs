//! The server under test: a bench binary pinned to the server's CPU, the CPU time it has
//! used, and the sessions it hands out over HTTP.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_testkit::http::read_response;
use session_testkit::launcher::free_port;

use super::SERVER_CPU;

const SECRET: &str = "a benchmark secret of at least thirty-two bytes";

/// A bench server pinned to CPU 0.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Server {
    /// Starts `binary` with one worker on a free port in front of `store_url`, and waits
    /// until it listens.
    pub(crate) fn start(binary: &Path, store_url: &str) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new("taskset")
            .args(["-c", SERVER_CPU])
            .arg(binary)
            .env("PORT", port.to_string())
            .env("WORKERS", "1")
            .env("SESSION_SECRET", SECRET)
            .env("SESSION_STORE_URL", store_url)
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "{} did not start with {store_url}",
                    binary.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The CPU time the server has used so far (user + system), from `/proc`.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 12th and
        // 13th of those, in clock ticks (100 per second on Linux).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// `count` sessions made with `/new`, as `name=value` cookie pairs (none for a server
    /// without sessions).
    pub(super) fn sessions(&self, count: usize) -> Result<Vec<String>, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        let request = "GET /new HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut cookies = Vec::with_capacity(count);
        let mut buffer = Vec::new();
        for _ in 0..count {
            stream
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            let response = read_response(&mut stream, &mut buffer).map_err(|e| e.to_string())?;
            // The no-session baseline sets none; its requests then carry none.
            cookies.extend(response.cookie);
        }
        Ok(cookies)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cookies shaped like the library's (`session=<43 chars>.<43 chars>`), for a baseline
/// that has no sessions: both servers then parse requests of the same size.
pub(super) fn lookalike_cookies(count: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ALPHABET[(state % 64) as usize] as char
    };
    (0..count)
        .map(|_| {
            let id: String = (0..43).map(|_| next()).collect();
            let signature: String = (0..43).map(|_| next()).collect();
            format!("session={id}.{signature}")
        })
        .collect()
}
